// Standard-transformer pieces of the built-in families; see include/vcycle/models/transformer.h.
#include "vcycle/models/transformer.h"

#include <string>

#include "vcycle/core/errors.h"

namespace vcycle {

void check_heads_size(const char* family, int64_t heads_size, int64_t head_size) {
  if (head_size < 1 || heads_size % head_size != 0) {
    throw InputError(std::string(family) + " shape: heads size " + std::to_string(heads_size) +
                     " is not a multiple of head_size " + std::to_string(head_size));
  }
}

namespace {

void add_block_norms(ParamMap& map) {
  for (const char* ln : {"ln1", "ln2"}) {
    map.param(std::string("blocks.{layer}.") + ln + ".weight", {axis_out("hidden")})
        .param(std::string("blocks.{layer}.") + ln + ".bias", {axis_out("hidden")});
  }
}

}  // namespace

ParamMap& add_transformer_block(ParamMap& map, BlockNorms norms) {
  if (norms == BlockNorms::first) add_block_norms(map);
  map.param("blocks.{layer}.attn.qkv.weight", {axis_out("heads", 3), axis_in("hidden")})  // q, k, v chunks
      .param("blocks.{layer}.attn.qkv.bias", {axis_out("heads", 3)})
      .param("blocks.{layer}.attn.proj.weight", {axis_out("hidden"), axis_in("heads")})
      .param("blocks.{layer}.attn.proj.bias", {axis_out("hidden")})
      .param("blocks.{layer}.mlp.fc.weight", {axis_out("ffn"), axis_in("hidden")})
      .param("blocks.{layer}.mlp.fc.bias", {axis_out("ffn")})
      .param("blocks.{layer}.mlp.proj.weight", {axis_out("hidden"), axis_in("ffn")})
      .param("blocks.{layer}.mlp.proj.bias", {axis_out("hidden")});
  if (norms == BlockNorms::last) add_block_norms(map);
  return map;
}

}  // namespace vcycle
