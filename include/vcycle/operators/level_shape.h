// The shape of one level of a multi-level model: a size per width space plus a block count; and the
// shapes of a V-cycle's levels.
//
// Width spaces are named axis families ("hidden", "heads", "ffn", or a user model's own); for
// "heads" the size is H·h (the attention inner size). Level 1 is the full model; each deeper level
// divides every width size by the width factor and the block count by the depth factor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vcycle {

class ParamMap;  // param_map.h, which includes this header

struct LevelShape {
  std::map<std::string, int64_t> sizes;  // width space name -> size at this level
  int64_t layers = 0;                    // number of repeated blocks

  int64_t size(const std::string& space) const;  // throws InputError naming an unknown space
  bool operator==(const LevelShape& o) const { return sizes == o.sizes && layers == o.layers; }
  bool operator!=(const LevelShape& o) const { return !(*this == o); }
  std::string to_string() const;  // "layers=4 ffn=1024 heads=256 hidden=256"
};

// The shape of the level below `large`: every width space divided by `width_factor`, in whole units
// of the space (`map`'s unit: heads merge whole), and the block count by `depth_factor`. InputError
// naming the space (or "layers"), its size, unit count and the factor when indivisible, or when a
// space of `large` is not declared in `map` (or the reverse), or a factor is below 1.
LevelShape coalesce_shape(const ParamMap& map, const LevelShape& large, int64_t width_factor, int64_t depth_factor);

// Shapes of levels 1 … count (element 0 is `top`), each the coalesce_shape() of the one before.
// Checks every step's divisibility up front; the InputError names the level that does not divide.
std::vector<LevelShape> level_shapes(const ParamMap& map, const LevelShape& top, int64_t width_factor,
                                     int64_t depth_factor, int count);

}  // namespace vcycle
