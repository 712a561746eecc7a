// The built-in ViT's parameter map; see include/vcycle/models/vit/param_map.h. Parameter names and shapes
// follow include/vcycle/models/vit/vit.h.
#include "vcycle/models/vit/param_map.h"


namespace vcycle {

ParamMap vit_param_map(const ViTConfig& cfg) {
  ParamMap map;
  map.space("hidden").space("heads", cfg.head_size).space("ffn");
  map.param("patch_emb.weight", {axis_out("hidden"), axis_none()})  // output channels; pixels in no space
      .param("patch_emb.bias", {axis_out("hidden")})
      .param("cls_token", {axis_none(), axis_none(), axis_out("hidden")})
      .param("pos_emb", {axis_none(), axis_none(), axis_out("hidden")});
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
