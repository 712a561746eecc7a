// The shape of one level of a multi-level model: a size per width space plus a block count.
//
// Width spaces are named axis families ("hidden", "heads", "ffn", or a user model's own); for
// "heads" the size is H·h (the attention inner size). Level 1 is the full model; each deeper level
// divides every width size by the width factor and the block count by the depth factor.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace vcycle {

struct LevelShape {
  std::map<std::string, int64_t> sizes;  // width space name -> size at this level
  int64_t layers = 0;                    // number of repeated blocks

  int64_t size(const std::string& space) const;  // throws InputError naming an unknown space
  bool operator==(const LevelShape& o) const { return sizes == o.sizes && layers == o.layers; }
  bool operator!=(const LevelShape& o) const { return !(*this == o); }
  std::string to_string() const;  // "layers=4 ffn=1024 heads=256 hidden=256"
};

// The shape of a standard transformer config (GPT, BERT, ViT: fields layers, hidden, heads,
// head_size, ffn) and the config of such a model at a level shape. Heads keep their size h, so a
// narrower level has fewer heads; `family` names the model in the error for a size that is not a
// multiple of h.
template <class Config>
LevelShape transformer_level_shape(const Config& cfg) {
  LevelShape s;
  s.sizes = {{"hidden", cfg.hidden}, {"heads", cfg.heads * cfg.head_size}, {"ffn", cfg.ffn}};
  s.layers = cfg.layers;
  return s;
}

void check_heads_size(const char* family, int64_t heads_size, int64_t head_size);  // InputError if not divisible

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

}  // namespace vcycle
