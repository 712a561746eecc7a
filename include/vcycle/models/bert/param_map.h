// The built-in BERT's parameter map and the BertConfig <-> LevelShape conversions.
//
// Spaces: hidden (unit 1), heads (unit head_size: heads merge whole), ffn (unit 1); every
// `blocks.{layer}.*` tensor is layered. The MLM decoder is tied to the token embedding (out role on
// its feature axis), so the LayerNorm feeding it — the head transform's `mlm.ln` — takes the *in* role
// on γ and β (spec operators.md §4): logits = E·P·(1/k)·Pᵀ·z = E·z, and width de-coalescing preserves
// the MLM logits. The post-LN norms inside the blocks and the embedding norm stay *out*: they write
// the residual stream, which de-coalescing copies.
#pragma once

#include "vcycle/operators/level_shape.h"
#include "vcycle/models/bert/bert.h"
#include "vcycle/operators/param_map.h"

namespace vcycle {

ParamMap bert_param_map(const BertConfig& cfg);
// {hidden: d, heads: H·h, ffn: f}, layers L.
LevelShape bert_level_shape(const BertConfig& cfg);
// `base` with layers, hidden, heads (= s.size("heads") / head_size) and ffn taken from `s`.
// InputError when the heads size is not a multiple of base.head_size or a space is missing.
BertConfig bert_config_for_shape(const BertConfig& base, const LevelShape& s);

}  // namespace vcycle
