// Internal: matches a TensorMap against a ParamMap, validating it (the work behind
// param_map_validate), and groups the tensors by pattern for the operators.
#pragma once

#include <vector>

#include <torch/types.h>

#include "vcycle/operators/level_shape.h"
#include "vcycle/operators/param_map.h"
#include "vcycle/core/tensor_map.h"

namespace vcycle::detail {

struct PatternTensors {
  const ParamSpec* spec = nullptr;     // the pattern
  std::vector<torch::Tensor> tensors;  // by layer (layered), or the single tensor; empty if absent
};

// Throws InputError as param_map_validate documents. With `allow_absent` a pattern may match no
// tensor at all (optimizer state that is not there yet); a layered pattern still needs all blocks or
// none. The result lists the map's patterns in declaration order.
std::vector<PatternTensors> resolve(const ParamMap& map, const TensorMap& tensors, const LevelShape& shape,
                                    bool allow_absent);

}  // namespace vcycle::detail
