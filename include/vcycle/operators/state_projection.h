// Optimizer state across level changes (spec operators.md §6, `levels.optimizer_state: project`):
// take an optimizer's per-parameter state out by parameter name, move it to the next level with the
// model operators, and put it into the new level's optimizer.
//
//   auto named = named_parameters(*big);                               // the names the optimizer knows
//   NamedOptimizerState s = export_optimizer_state(*opt, named);
//   NamedOptimizerState small = project_optimizer_state(s, map, large_shape, factors, StateProjection::coalesce);
//   auto opt2 = make_optimizer(...same name..., named_parameters(*small_model), ...);
//   import_optimizer_state(*opt2, named_parameters(*small_model), small);
//
// How each state field moves (MomentKind in operators.h):
//   first moments (exp_avg)                           like their parameter: coalesce / de-coalesce exactly
//                                                     as the parameter (out axes average, in axes sum …);
//   second moments (exp_avg_sq, max_exp_avg_sq)       averaged on every axis when coalescing, copied when
//                                                     de-coalescing;
//   factored statistics (…_row: shape W[:-1];         the same as second moments: broadcast back to W's
//                        …_col: shape W[:-2]+W[-1:])  shape, projected as a second moment, then averaged
//                                                     over the broadcast axis again (a tensor constant
//                                                     along an axis stays constant, so this is exactly
//                                                     "averaged when coalescing, copied when de-coalescing").
// Step counters: every projected parameter takes the largest step count of the exported state (the
// runner steps all parameters together, so this is "keep the previous step count"); bias
// corrections and relative step sizes therefore go on as before the level change.
//
// Supported: the optimizers of optim/registry.h, whose state fields it lists. Anything else throws
// std::invalid_argument.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "vcycle/operators/level_shape.h"
#include "vcycle/operators/operators.h"
#include "vcycle/operators/param_map.h"
#include "vcycle/core/tensor_map.h"
#include "vcycle/optim/registry.h"

namespace vcycle::optim {

// An optimizer's per-parameter state, keyed by parameter name instead of by tensor identity.
struct NamedOptimizerState {
  std::string optimizer;                                // registry name (optim/registry.h)
  std::map<std::string, TensorMap> fields;              // state field -> parameter name -> tensor
  std::map<std::string, int64_t> steps;                 // parameter name -> step count
  std::map<std::string, std::vector<int64_t>> shapes;   // parameter name -> parameter shape

  bool empty() const { return steps.empty(); }
  int64_t max_step() const;     // 0 when empty
  double elements() const;      // state elements held (all fields)
};

// The kind of a state field of any registry optimizer (StateFieldKind, optim/registry.h).
// Throws std::invalid_argument for a field name none of them keeps.
StateFieldKind state_field_kind(const std::string& field);

enum class StateProjection { coalesce, decoalesce };

// The named parameters of a module, in registration order (what make_optimizer() receives).
NamedParams named_parameters(const torch::nn::Module& module);

// Registry name of an optimizer built by make_optimizer(); throws std::invalid_argument for other
// types (the same as optimizer_name(), optim/registry.h).
std::string optimizer_kind(const torch::optim::Optimizer& opt);

// The state of every parameter in `params` that has one (parameters not yet stepped are left out).
// Tensors are detached clones, so the optimizer may go away afterwards.
NamedOptimizerState export_optimizer_state(torch::optim::Optimizer& opt, const NamedParams& params);

// Installs `state` in `opt` (replacing any state of those parameters). The optimizer kind must
// match; every parameter named in `state` must be in `params` with matching state shapes; tensors
// move to the parameter's device and stay fp32. Throws InputError naming the parameter otherwise.
void import_optimizer_state(torch::optim::Optimizer& opt, const NamedParams& params, const NamedOptimizerState& state);

// Moves `state` one level: coalesce — `state` belongs to a model of shape `large`, the result to
// coalesce_shape(map, large, f); decoalesce — the reverse (the result has shape `large`).
NamedOptimizerState project_optimizer_state(const NamedOptimizerState& state, const ParamMap& map,
                                            const LevelShape& large, const CoalesceFactors& f, StateProjection direction);

}  // namespace vcycle::optim
