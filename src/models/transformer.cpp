// Standard-transformer pieces of the built-in families; see include/vcycle/models/transformer.h.
#include "vcycle/models/transformer.h"

#include <string>

namespace vcycle {

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
