// Level shapes; see include/vcycle/operators/level_shape.h.
#include "vcycle/operators/level_shape.h"

#include <sstream>

#include "vcycle/core/errors.h"
#include "vcycle/operators/param_map.h"

namespace vcycle {

int64_t LevelShape::size(const std::string& space) const {
  auto it = sizes.find(space);
  if (it == sizes.end()) throw InputError("level shape has no width space '" + space + "' (" + to_string() + ")");
  return it->second;
}

std::string LevelShape::to_string() const {
  std::ostringstream out;
  out << "layers=" << layers;
  for (const auto& [name, size] : sizes) out << " " << name << "=" << size;
  return out.str();
}

namespace {

void check_factors(int64_t width_factor, int64_t depth_factor) {
  if (width_factor < 1) throw InputError("width factor must be >= 1, got " + std::to_string(width_factor));
  if (depth_factor < 1) throw InputError("depth factor must be >= 1, got " + std::to_string(depth_factor));
}

// Every space of the map at `shape` is a positive whole number of units.
void check_units(const ParamMap& map, const LevelShape& shape) {
  for (const auto& [space, unit] : map.spaces()) {
    if (!shape.sizes.count(space)) {
      throw InputError("level shape " + shape.to_string() + " has no size for width space '" + space + "'");
    }
    const int64_t n = shape.sizes.at(space);
    if (n < 1 || n % unit != 0) {
      throw InputError("width space '" + space + "' has size " + std::to_string(n) +
                       ", not a positive multiple of its unit " + std::to_string(unit));
    }
  }
  for (const auto& [space, size] : shape.sizes) {
    if (!map.spaces().count(space)) {
      throw InputError("level shape has width space '" + space + "', which the parameter map does not declare");
    }
  }
  if (shape.layers < 1) throw InputError("level shape has " + std::to_string(shape.layers) + " layers, need >= 1");
}

}  // namespace

LevelShape coalesce_shape(const ParamMap& map, const LevelShape& large, int64_t width_factor, int64_t depth_factor) {
  check_factors(width_factor, depth_factor);
  check_units(map, large);
  LevelShape small = large;
  for (auto& [space, size] : small.sizes) {
    const int64_t unit = map.unit(space), units = size / unit;
    if (units % width_factor != 0) {
      std::ostringstream msg;
      msg << "width space '" << space << "' has size " << size << " (" << units << " units of " << unit
          << "), not divisible by the width factor " << width_factor << " (shape " << large.to_string() << ")";
      throw InputError(msg.str());
    }
    size /= width_factor;
  }
  if (large.layers % depth_factor != 0) {
    throw InputError("layers " + std::to_string(large.layers) + " not divisible by the depth factor " +
                     std::to_string(depth_factor) + " (shape " + large.to_string() + ")");
  }
  small.layers = large.layers / depth_factor;
  return small;
}

std::vector<LevelShape> level_shapes(const ParamMap& map, const LevelShape& top, int64_t width_factor,
                                     int64_t depth_factor, int count) {
  if (count < 1) throw InputError("level count must be >= 1, got " + std::to_string(count));
  check_factors(width_factor, depth_factor);
  check_units(map, top);
  std::vector<LevelShape> shapes{top};
  for (int level = 2; level <= count; ++level) {
    try {
      shapes.push_back(coalesce_shape(map, shapes.back(), width_factor, depth_factor));
    } catch (const InputError& e) {
      throw InputError("cannot build level " + std::to_string(level) + " of " + std::to_string(count) + ": " + e.what());
    }
  }
  return shapes;
}

}  // namespace vcycle
