// The built-in BERT's parameter map; see include/vcycle/models/bert/param_map.h. Parameter names and shapes
// follow include/vcycle/models/bert/bert.h.
#include "vcycle/models/bert/param_map.h"


namespace vcycle {

ParamMap bert_param_map(const BertConfig& cfg) {
  ParamMap map;
  map.space("hidden").space("heads", cfg.head_size).space("ffn");
  map.param("tok_emb.weight", {axis_none(), axis_out("hidden")})
      .param("pos_emb.weight", {axis_none(), axis_out("hidden")})
      .param("seg_emb.weight", {axis_none(), axis_out("hidden")})
      .param("emb_ln.weight", {axis_out("hidden")})
      .param("emb_ln.bias", {axis_out("hidden")});
  map.param("blocks.{layer}.attn.qkv.weight", {axis_out("heads", 3), axis_in("hidden")})  // q, k, v chunks
      .param("blocks.{layer}.attn.qkv.bias", {axis_out("heads", 3)})
      .param("blocks.{layer}.attn.proj.weight", {axis_out("hidden"), axis_in("heads")})
      .param("blocks.{layer}.attn.proj.bias", {axis_out("hidden")})
      .param("blocks.{layer}.mlp.fc.weight", {axis_out("ffn"), axis_in("hidden")})
      .param("blocks.{layer}.mlp.fc.bias", {axis_out("ffn")})
      .param("blocks.{layer}.mlp.proj.weight", {axis_out("hidden"), axis_in("ffn")})
      .param("blocks.{layer}.mlp.proj.bias", {axis_out("hidden")});
  for (const char* ln : {"ln1", "ln2"}) {
    map.param(std::string("blocks.{layer}.") + ln + ".weight", {axis_out("hidden")})
        .param(std::string("blocks.{layer}.") + ln + ".bias", {axis_out("hidden")});
  }
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
