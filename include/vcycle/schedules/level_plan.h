// The levels of one run: their shapes, FLOP shapes, and the moves between them.
//
// down(l):  coalesce level l's tensors to level l+1.
// up(l):    de-coalesce level l+1's tensors to level l's shape and interpolate with θ_pre(l); without
//           a θ_pre (growth: level l was never coalesced from), de-coalesce only.
// Each move reports the FLOPs it spent: one per element written (spec: operators count that way).
#pragma once

#include <string>
#include <vector>

#include "vcycle/config/run_config.h"
#include "vcycle/core/flops.h"
#include "vcycle/operators/level_shape.h"
#include "vcycle/models/model_adapter.h"
#include "vcycle/operators/operators.h"
#include "vcycle/core/tensor_map.h"

namespace vcycle {

struct TransitionResult {
  TensorMap tensors;  // the model's tensors at the new level
  double flops = 0;   // elements written by the operators
  std::string op;     // "coalesce", "decoalesce+interpolate" or "decoalesce"
};

class LevelPlan {
 public:
  // Computes the `count` level shapes from the adapter's top shape and the config's factors;
  // an indivisible size is an InputError naming the space, before anything trains.
  LevelPlan(const RunConfig& cfg, const ModelAdapter& adapter, int count);

  int count() const { return static_cast<int>(shapes_.size()); }
  const LevelShape& shape(int level) const { return shapes_.at(level - 1); }  // level is 1-based
  const FlopShape& flops(int level) const { return flops_.at(level - 1); }
  const CoalesceFactors& factors() const { return factors_; }

  TransitionResult down(const TensorMap& tensors, int level) const;
  // `pre` null: de-coalesce only; otherwise blend with it as `interpolation` says.
  TransitionResult up(const TensorMap& small, const TensorMap* pre, int level, const InterpolationConfig& interpolation) const;

 private:
  const RunConfig& cfg_;
  const ModelAdapter& adapter_;
  std::vector<LevelShape> shapes_;
  std::vector<FlopShape> flops_;
  CoalesceFactors factors_;
};

}  // namespace vcycle
