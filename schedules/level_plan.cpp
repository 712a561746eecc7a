// Level shapes and the moves between levels; see include/vcycle/schedules/level_plan.h.
#include "vcycle/schedules/level_plan.h"

#include "vcycle/core/errors.h"
#include "vcycle/operators/operators.h"

namespace vcycle {

namespace {

CoalesceFactors factors_of(const LevelsConfig& l) {
  CoalesceFactors f;
  f.width = l.width_factor;
  f.depth = l.depth_factor;
  f.width_pairing = l.width_pairing;
  f.depth_pairing = l.depth_pairing;
  return f;
}

double elements(const TensorMap& tensors) {
  double n = 0;
  for (const auto& [name, t] : tensors) n += static_cast<double>(t.numel());
  return n;
}

}  // namespace

LevelPlan::LevelPlan(const RunConfig& cfg, const ModelAdapter& adapter, int count)
    : cfg_(cfg), adapter_(adapter), factors_(factors_of(cfg.levels)) {
  shapes_ = count == 1 ? std::vector<LevelShape>{adapter.top_shape()}
                       : level_shapes(adapter.param_map(), adapter.top_shape(), factors_.width, factors_.depth, count);
  for (const auto& s : shapes_) flops_.push_back(adapter.flop_shape(s));
}

TransitionResult LevelPlan::down(const TensorMap& tensors, int level) const {
  TransitionResult r;
  r.tensors = coalesce(tensors, adapter_.param_map(), shape(level), factors_);
  r.flops = elements(r.tensors);
  r.op = "coalesce";
  return r;
}

TransitionResult LevelPlan::up(const TensorMap& small, const TensorMap* pre, int level,
                              const InterpolationConfig& interpolation) const {
  TransitionResult r;
  TensorMap deco = decoalesce(small, adapter_.param_map(), shape(level), factors_);
  r.flops = elements(deco);
  if (pre == nullptr) {
    r.tensors = std::move(deco);
    r.op = "decoalesce";
    return r;
  }
  r.tensors = interpolate(*pre, deco, interpolation.alpha, interpolation.mode);
  r.flops += elements(r.tensors);
  r.op = "decoalesce+interpolate";
  return r;
}

}  // namespace vcycle
