// The built-in GPT's parameter map; see include/vcycle/models/gpt/param_map.h. Parameter names and shapes
// follow include/vcycle/models/gpt/gpt.h.
#include "vcycle/models/gpt/param_map.h"

#include "vcycle/models/transformer.h"

namespace vcycle {

ParamMap gpt_param_map(const GPTConfig& cfg) {
  ParamMap map;
  map.space("hidden").space("heads", cfg.head_size).space("ffn");
  map.param("tok_emb.weight", {axis_none(), axis_out("hidden")})
      .param("pos_emb.weight", {axis_none(), axis_out("hidden")});
  add_transformer_block(map, BlockNorms::first);  // pre-LN: the norms' entries come first
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
