// What the built-in families (GPT, BERT, ViT) share as standard transformers: the sizes layers,
// hidden, heads, head_size and ffn of their configs, as a level shape and back; the parameter-map
// entries of their blocks; and the blocks' matmul count for the FLOP formula (flops.h).
#pragma once

#include <cstdint>

#include "vcycle/core/yaml_util.h"
#include "vcycle/operators/level_shape.h"
#include "vcycle/operators/param_map.h"

namespace vcycle {

// Reads the block sizes every built-in transformer shares (GPT, BERT, ViT) from a model section:
// layers, hidden, heads, optional head_size (default hidden / heads, which must divide) and
// optional ffn (default 4·hidden).
template <class Config>
void read_transformer_sizes(YamlReader& r, Config& c) {
  c.layers = r.get_positive<int64_t>("layers");
  c.hidden = r.get_positive<int64_t>("hidden");
  c.heads = r.get_positive<int64_t>("heads");
  if (r.has("head_size")) {
    c.head_size = r.get_positive<int64_t>("head_size");
  } else {
    if (c.hidden % c.heads != 0) {
      r.fail("heads", "hidden (" + std::to_string(c.hidden) + ") is not divisible by heads (" + std::to_string(c.heads) +
                          "); set head_size explicitly");
    }
    c.head_size = c.hidden / c.heads;
  }
  c.ffn = r.get_or<int64_t>("ffn", 4 * c.hidden);
  if (c.ffn <= 0) r.fail("ffn", "must be > 0, got " + std::to_string(c.ffn));
}

// The shape of a standard transformer config: {hidden: d, heads: H·h, ffn: f}, layers L.
template <class Config>
LevelShape transformer_level_shape(const Config& cfg) {
  LevelShape s;
  s.sizes = {{"hidden", cfg.hidden}, {"heads", cfg.heads * cfg.head_size}, {"ffn", cfg.ffn}};
  s.layers = cfg.layers;
  return s;
}

void check_heads_size(const char* family, int64_t heads_size, int64_t head_size);  // InputError if not divisible

// The config of such a model at a level shape. Heads keep their size h, so a narrower level has fewer
// heads; `family` names the model in the error for a size that is not a multiple of h.
template <class Config>
Config transformer_config_for_shape(const Config& base, const LevelShape& s, const char* family) {
  Config cfg = base;
  const int64_t attn = s.size("heads");
  check_heads_size(family, attn, base.head_size);
  cfg.layers = s.layers;
  cfg.hidden = s.size("hidden");
  cfg.heads = attn / base.head_size;
  cfg.ffn = s.size("ffn");
  return cfg;
}

// Where a block's two LayerNorms go among its map entries. A map's entries keep their declaration
// order (maps compare entry by entry and are written in that order), so each family keeps its own.
enum class BlockNorms { first, last };

// Declares the tensors of the standard block (attention.h's SelfAttention as `attn`, layers.h's MLP
// as `mlp`, LayerNorms `ln1`, `ln2`) under `blocks.{layer}.`, on the spaces hidden, heads (q, k, v
// chunks) and ffn, which `map` must declare first.
ParamMap& add_transformer_block(ParamMap& map, BlockNorms norms);

// N_mm of the L standard blocks. Per block: qkv (3·d_attn × d) + attention output (d × d_attn) + MLP
// in (f × d) and out (d × f), with d_attn = H·h.
template <class Config>
int64_t transformer_blocks_matmul_params(const Config& c) {
  const int64_t d_attn = c.heads * c.head_size;
  return c.layers * (3 * d_attn * c.hidden + d_attn * c.hidden + 2 * c.hidden * c.ffn);
}

}  // namespace vcycle
