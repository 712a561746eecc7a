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

}  // namespace vcycle
