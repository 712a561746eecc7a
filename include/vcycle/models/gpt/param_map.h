// The built-in GPT's parameter map and the GPTConfig <-> LevelShape conversions.
//
// Spaces: hidden (unit 1), heads (unit head_size: heads merge whole), ffn (unit 1); every
// `blocks.{layer}.*` tensor is layered. With tied embeddings the final norm `ln_f` takes the *in*
// role on γ and β (spec operators.md §4) so that width de-coalescing preserves the logits exactly;
// untied, `ln_f` is *out* and `head.weight` is *in* on its hidden axis.
#pragma once

#include "vcycle/operators/level_shape.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/operators/param_map.h"

namespace vcycle {

// Map for a GPT built from `cfg` (tied or untied, per cfg.tied_embeddings).
ParamMap gpt_param_map(const GPTConfig& cfg);
// {hidden: d, heads: H·h, ffn: f}, layers L.
LevelShape gpt_level_shape(const GPTConfig& cfg);
// `base` with layers, hidden, heads (= s.size("heads") / head_size) and ffn taken from `s`.
// InputError when the heads size is not a multiple of base.head_size or a space is missing.
GPTConfig gpt_config_for_shape(const GPTConfig& base, const LevelShape& s);

}  // namespace vcycle
