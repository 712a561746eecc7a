// The built-in GPT's parameter map; see include/vcycle/models/gpt/param_map.h. Parameter names and shapes
// follow include/vcycle/models/gpt/gpt.h.
#include "vcycle/models/gpt/param_map.h"


namespace vcycle {

ParamMap gpt_param_map(const GPTConfig& cfg) {
  ParamMap map;
  map.space("hidden").space("heads", cfg.head_size).space("ffn");
  map.param("tok_emb.weight", {axis_none(), axis_out("hidden")})
      .param("pos_emb.weight", {axis_none(), axis_out("hidden")});
  for (const char* ln : {"ln1", "ln2"}) {
    map.param(std::string("blocks.{layer}.") + ln + ".weight", {axis_out("hidden")})
        .param(std::string("blocks.{layer}.") + ln + ".bias", {axis_out("hidden")});
  }
  map.param("blocks.{layer}.attn.qkv.weight", {axis_out("heads", 3), axis_in("hidden")})  // q, k, v chunks
      .param("blocks.{layer}.attn.qkv.bias", {axis_out("heads", 3)})
      .param("blocks.{layer}.attn.proj.weight", {axis_out("hidden"), axis_in("heads")})
      .param("blocks.{layer}.attn.proj.bias", {axis_out("hidden")})
      .param("blocks.{layer}.mlp.fc.weight", {axis_out("ffn"), axis_in("hidden")})
      .param("blocks.{layer}.mlp.fc.bias", {axis_out("ffn")})
      .param("blocks.{layer}.mlp.proj.weight", {axis_out("hidden"), axis_in("ffn")})
      .param("blocks.{layer}.mlp.proj.bias", {axis_out("hidden")});
  if (cfg.tied_embeddings) {
    // The norm feeding the tied head takes the in role (spec §4): logits = E·P·(1/k)·Pᵀ·z = E·z.
    map.param("ln_f.weight", {axis_in("hidden")}).param("ln_f.bias", {axis_in("hidden")});
  } else {
    map.param("ln_f.weight", {axis_out("hidden")})
        .param("ln_f.bias", {axis_out("hidden")})
        .param("head.weight", {axis_none(), axis_in("hidden")});
  }
  return map;
}

LevelShape gpt_level_shape(const GPTConfig& cfg) { return transformer_level_shape(cfg); }

GPTConfig gpt_config_for_shape(const GPTConfig& base, const LevelShape& s) {
  return transformer_config_for_shape(base, s, "GPT");
}

}  // namespace vcycle
