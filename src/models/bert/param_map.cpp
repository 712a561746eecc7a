// The built-in BERT's parameter map; see include/vcycle/models/bert/param_map.h. Parameter names and shapes
// follow include/vcycle/models/bert/bert.h.
#include "vcycle/models/bert/param_map.h"

#include "vcycle/models/transformer.h"

namespace vcycle {

ParamMap bert_param_map(const BertConfig& cfg) {
  ParamMap map;
  map.space("hidden").space("heads", cfg.head_size).space("ffn");
  map.param("tok_emb.weight", {axis_none(), axis_out("hidden")})
      .param("pos_emb.weight", {axis_none(), axis_out("hidden")})
      .param("seg_emb.weight", {axis_none(), axis_out("hidden")})
      .param("emb_ln.weight", {axis_out("hidden")})
      .param("emb_ln.bias", {axis_out("hidden")});
  add_transformer_block(map, BlockNorms::last);  // post-LN: the norms' entries come last
  map.param("mlm.dense.weight", {axis_out("hidden"), axis_in("hidden")})
      .param("mlm.dense.bias", {axis_out("hidden")})
      // The norm feeding the tied decoder takes the in role (spec §4).
      .param("mlm.ln.weight", {axis_in("hidden")})
      .param("mlm.ln.bias", {axis_in("hidden")})
      .param("mlm.bias", {axis_none()});  // per vocabulary entry
  return map;
}

LevelShape bert_level_shape(const BertConfig& cfg) { return transformer_level_shape(cfg); }

BertConfig bert_config_for_shape(const BertConfig& base, const LevelShape& s) {
  return transformer_config_for_shape(base, s, "BERT");
}

}  // namespace vcycle
