// What the built-in families (GPT, BERT, ViT) share as standard transformers: the parameter-map
// entries of their blocks.
#pragma once

#include "vcycle/operators/param_map.h"

namespace vcycle {

// Where a block's two LayerNorms go among its map entries. A map's entries keep their declaration
// order (maps compare entry by entry and are written in that order), so each family keeps its own.
enum class BlockNorms { first, last };

// Declares the tensors of the standard block (attention.h's SelfAttention as `attn`, layers.h's MLP
// as `mlp`, LayerNorms `ln1`, `ln2`) under `blocks.{layer}.`, on the spaces hidden, heads (q, k, v
// chunks) and ffn, which `map` must declare first.
ParamMap& add_transformer_block(ParamMap& map, BlockNorms norms);

}  // namespace vcycle
