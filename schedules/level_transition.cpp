// TEMPORARY single-level plan until the operators branch lands.
#include "vcycle/level_transition.h"
#include "vcycle/errors.h"
namespace vcycle {
LevelPlan::LevelPlan(const RunConfig& cfg, const ModelAdapter& adapter, int count) : cfg_(cfg), adapter_(adapter) {
  if (count != 1) throw InputError("multi-level runs need the operators");
  shapes_.push_back(adapter.top_shape());
  flops_.push_back(adapter.flop_shape(shapes_[0]));
}
TransitionResult LevelPlan::down(const TensorMap&, int) const { throw InputError("no operators"); }
TransitionResult LevelPlan::up(const TensorMap&, const TensorMap&, int) const { throw InputError("no operators"); }
}
