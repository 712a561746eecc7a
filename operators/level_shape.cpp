// Level shapes; see include/vcycle/operators/level_shape.h.
#include "vcycle/operators/level_shape.h"

#include <sstream>

#include "vcycle/core/errors.h"

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

}  // namespace vcycle
