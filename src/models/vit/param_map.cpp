// The built-in ViT's parameter map; see include/vcycle/models/vit/param_map.h. Parameter names and shapes
// follow include/vcycle/models/vit/vit.h.
#include "vcycle/models/vit/param_map.h"

#include "vcycle/models/transformer.h"

namespace vcycle {

ParamMap vit_param_map(const ViTConfig& cfg) {
  ParamMap map;
  map.space("hidden").space("heads", cfg.head_size).space("ffn");
  map.param("patch_emb.weight", {axis_out("hidden"), axis_none()})  // output channels; pixels in no space
      .param("patch_emb.bias", {axis_out("hidden")})
      .param("cls_token", {axis_none(), axis_none(), axis_out("hidden")})
      .param("pos_emb", {axis_none(), axis_none(), axis_out("hidden")});
  add_transformer_block(map, BlockNorms::first);  // pre-LN: the norms' entries come first
  map.param("ln_f.weight", {axis_out("hidden")})
      .param("ln_f.bias", {axis_out("hidden")})
      .param("head.weight", {axis_none(), axis_in("hidden")})  // untied classifier
      .param("head.bias", {axis_none()});
  return map;
}

LevelShape vit_level_shape(const ViTConfig& cfg) { return transformer_level_shape(cfg); }

ViTConfig vit_config_for_shape(const ViTConfig& base, const LevelShape& s) {
  return transformer_config_for_shape(base, s, "ViT");
}

}  // namespace vcycle
