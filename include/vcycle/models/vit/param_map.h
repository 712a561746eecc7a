// The built-in ViT's parameter map and the ViTConfig <-> LevelShape conversions.
//
// Spaces: hidden (unit 1), heads (unit head_size: heads merge whole), ffn (unit 1); every
// `blocks.{layer}.*` tensor is layered. The patch projection's output channels, the class token and
// the position embeddings write the residual stream: *out* role on their feature axis (spec
// operators.md §3). The classifier is untied, so the final norm `ln_f` is *out* and `head.weight` is
// *in* on its hidden axis; `head.bias` (per class) is in no space.
#pragma once

#include "vcycle/operators/level_shape.h"
#include "vcycle/models/vit/vit.h"
#include "vcycle/operators/param_map.h"

namespace vcycle {

ParamMap vit_param_map(const ViTConfig& cfg);
// {hidden: d, heads: H·h, ffn: f}, layers L.
LevelShape vit_level_shape(const ViTConfig& cfg);
// `base` with layers, hidden, heads (= s.size("heads") / head_size) and ffn taken from `s`.
// InputError when the heads size is not a multiple of base.head_size or a space is missing.
ViTConfig vit_config_for_shape(const ViTConfig& base, const LevelShape& s);

}  // namespace vcycle
