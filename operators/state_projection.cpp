// Optimizer state by parameter name, and its projection between levels; see
// include/vcycle/operators/state_projection.h.
#include "vcycle/operators/state_projection.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

#include "vcycle/core/errors.h"
#include "vcycle/optim/registry.h"

namespace vcycle::optim {

namespace {

std::string shape_text(c10::IntArrayRef sizes) {
  std::ostringstream out;
  out << sizes;
  return out.str();
}

// The shape a state field must have for a parameter of shape `param`.
std::vector<int64_t> field_shape(StateFieldKind kind, const std::vector<int64_t>& param) {
  switch (kind) {
    case StateFieldKind::first:
    case StateFieldKind::second:
      return param;
    case StateFieldKind::factor_row:
      if (param.size() < 2) break;
      return std::vector<int64_t>(param.begin(), param.end() - 1);
    case StateFieldKind::factor_col: {
      if (param.size() < 2) break;
      std::vector<int64_t> col(param.begin(), param.end() - 2);
      col.push_back(param.back());
      return col;
    }
  }
  return {};  // a factored statistic of a parameter with fewer than two axes: never valid
}

void check_field_shape(const std::string& field, const std::string& name, const torch::Tensor& t,
                       const std::vector<int64_t>& param) {
  const auto want = field_shape(state_field_kind(field), param);
  if (want.empty() || t.sizes() != c10::IntArrayRef(want)) {
    throw InputError("optimizer state '" + field + "' of parameter '" + name + "' has shape " + shape_text(t.sizes()) +
                     ", which does not fit a parameter of shape " + shape_text(param));
  }
}

// The state of parameter `name` in `st`, ready to install: every field `held` that `st` has for it,
// checked against the parameter's shape and copied (the optimizer updates its state in place) to
// the parameter's device as fp32; the parameter's step count, or the largest one when it has none.
ParamState imported(const NamedOptimizerState& st, const std::vector<StateField>& held, const std::string& name,
                    const torch::Tensor& p) {
  ParamState s;
  const std::vector<int64_t> shape = p.sizes().vec();
  for (const auto& field : held) {
    auto f = st.fields.find(field.name);
    if (f == st.fields.end()) continue;
    auto it = f->second.find(name);
    if (it == f->second.end()) continue;
    check_field_shape(field.name, name, it->second, shape);
    s.fields[field.name] =
        it->second.detach().to(p.device(), torch::kFloat, /*non_blocking=*/false, /*copy=*/true).contiguous();
  }
  auto step = st.steps.find(name);
  s.step = step != st.steps.end() ? step->second : st.max_step();
  return s;
}

}  // namespace

int64_t NamedOptimizerState::max_step() const {
  int64_t m = 0;
  for (const auto& [name, s] : steps) m = std::max(m, s);
  return m;
}

double NamedOptimizerState::elements() const {
  double n = 0;
  for (const auto& [field, tensors] : fields) {
    for (const auto& [name, t] : tensors) n += static_cast<double>(t.numel());
  }
  return n;
}

StateFieldKind state_field_kind(const std::string& field) {
  for (const auto& name : optimizer_names()) {
    for (const auto& f : state_fields(name))
      if (f.name == field) return f.kind;
  }
  throw std::invalid_argument("unknown optimizer state field '" + field + "'");
}

NamedParams named_parameters(const torch::nn::Module& module) {
  NamedParams out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

std::string optimizer_kind(const torch::optim::Optimizer& opt) { return optimizer_name(opt); }

NamedOptimizerState export_optimizer_state(torch::optim::Optimizer& opt, const NamedParams& params) {
  torch::NoGradGuard no_grad;
  NamedOptimizerState out;
  out.optimizer = optimizer_kind(opt);
  for (const auto& [name, p] : params) {
    const auto state = read_param_state(opt, p);
    if (!state) continue;
    for (const auto& [field, t] : state->fields) out.fields[field][name] = t.detach().clone(at::MemoryFormat::Contiguous);
    out.steps[name] = state->step;
    out.shapes[name] = p.sizes().vec();
  }
  return out;
}

void import_optimizer_state(torch::optim::Optimizer& opt, const NamedParams& params, const NamedOptimizerState& state) {
  torch::NoGradGuard no_grad;
  const std::string kind = optimizer_kind(opt);
  if (kind != state.optimizer) {
    throw InputError("cannot import " + state.optimizer + " optimizer state into a " + kind + " optimizer");
  }
  const std::map<std::string, torch::Tensor> by_name(params.begin(), params.end());
  // Check everything before installing anything: each field must be one this optimizer holds, and
  // every named tensor must belong to a parameter of the model.
  const std::vector<StateField>& held = state_fields(kind);
  for (const auto& [field, tensors] : state.fields) {
    if (tensors.empty()) continue;
    if (std::none_of(held.begin(), held.end(), [&](const StateField& f) { return f.name == field; })) {
      throw InputError(kind + " optimizer state has no field '" + field + "'");
    }
    for (const auto& [name, t] : tensors) {
      if (by_name.count(name) == 0) {
        throw InputError("optimizer state '" + field + "' names parameter '" + name + "', which the model does not have");
      }
      check_field_shape(field, name, t, by_name.at(name).sizes().vec());
    }
  }
  std::set<std::string> names;  // every parameter the state speaks of
  for (const auto& [name, step] : state.steps) {
    if (by_name.count(name) == 0) {
      throw InputError("optimizer state names parameter '" + name + "', which the model does not have");
    }
    names.insert(name);
  }
  for (const auto& [field, tensors] : state.fields) {
    for (const auto& [name, t] : tensors) names.insert(name);
  }
  for (const auto& name : names) {
    const torch::Tensor& p = by_name.at(name);
    write_param_state(opt, p, imported(state, held, name, p));
  }
}

NamedOptimizerState project_optimizer_state(const NamedOptimizerState& state, const ParamMap& map,
                                            const LevelShape& large, const CoalesceFactors& f,
                                            StateProjection direction) {
  torch::NoGradGuard no_grad;
  auto move = [&](const TensorMap& tensors, MomentKind kind) {
    return direction == StateProjection::coalesce ? coalesce_state(tensors, map, large, f, kind)
                                                  : decoalesce_state(tensors, map, large, f, kind);
  };
  NamedOptimizerState out;
  out.optimizer = state.optimizer;
  for (const auto& [field, tensors] : state.fields) {
    if (tensors.empty()) continue;
    const StateFieldKind kind = state_field_kind(field);
    if (kind == StateFieldKind::first || kind == StateFieldKind::second) {
      for (const auto& [name, t] : tensors) {
        if (auto sh = state.shapes.find(name); sh != state.shapes.end()) check_field_shape(field, name, t, sh->second);
      }
      TensorMap moved = move(tensors, kind == StateFieldKind::first ? MomentKind::first : MomentKind::second);
      for (const auto& [name, t] : moved) out.shapes[name] = t.sizes().vec();
      out.fields[field] = std::move(moved);
      continue;
    }
    // A factored statistic is a mean over one axis of W: broadcast it back along that axis, move it
    // as a second moment (averaged / copied), and take the mean over the axis again.
    const int64_t axis = kind == StateFieldKind::factor_row ? -1 : -2;
    TensorMap full;
    for (const auto& [name, t] : tensors) {
      auto sh = state.shapes.find(name);
      if (sh == state.shapes.end()) {
        throw InputError("optimizer state '" + field + "' of parameter '" + name + "' comes without the parameter's shape");
      }
      check_field_shape(field, name, t, sh->second);
      full.emplace(name, t.unsqueeze(axis).expand(sh->second).contiguous());
    }
    TensorMap moved = move(full, MomentKind::second);
    full.clear();
    TensorMap& dst = out.fields[field];
    for (const auto& [name, t] : moved) {
      out.shapes[name] = t.sizes().vec();
      dst.emplace(name, t.mean(axis));
    }
  }
  const int64_t step = state.max_step();
  for (const auto& [name, shape] : out.shapes) out.steps[name] = step;
  return out;
}

}  // namespace vcycle::optim
