// Optimizer state by parameter name, and its projection between levels; see
// include/vcycle/operators/state_projection.h.
#include "vcycle/operators/state_projection.h"

#include <algorithm>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include <torch/optim/adamw.h>

#include "../src/optim/common.h"
#include "vcycle/core/errors.h"
#include "vcycle/optim/adafactor.h"
#include "vcycle/optim/came.h"
#include "vcycle/optim/lamb.h"

namespace vcycle::optim {

namespace {

using FieldList = std::vector<std::pair<const char*, torch::Tensor*>>;

// The state tensors of each ParamState type, by field name (the names of their TORCH_ARGs).
FieldList fields_of(torch::optim::AdamWParamState& s) {
  return {{"exp_avg", &s.exp_avg()}, {"exp_avg_sq", &s.exp_avg_sq()}, {"max_exp_avg_sq", &s.max_exp_avg_sq()}};
}
FieldList fields_of(CAMEParamState& s) {
  return {{"exp_avg", &s.exp_avg()},
          {"exp_avg_sq_row", &s.exp_avg_sq_row()},
          {"exp_avg_sq_col", &s.exp_avg_sq_col()},
          {"exp_avg_res_row", &s.exp_avg_res_row()},
          {"exp_avg_res_col", &s.exp_avg_res_col()},
          {"exp_avg_sq", &s.exp_avg_sq()}};
}
FieldList fields_of(LAMBParamState& s) { return {{"exp_avg", &s.exp_avg()}, {"exp_avg_sq", &s.exp_avg_sq()}}; }
FieldList fields_of(AdafactorParamState& s) {
  return {{"exp_avg", &s.exp_avg()},
          {"exp_avg_sq_row", &s.exp_avg_sq_row()},
          {"exp_avg_sq_col", &s.exp_avg_sq_col()},
          {"exp_avg_sq", &s.exp_avg_sq()}};
}

// The field names an optimizer kind holds.
std::vector<std::string> field_names(const std::string& kind) {
  FieldList fields;
  torch::optim::AdamWParamState a;
  CAMEParamState c;
  LAMBParamState l;
  AdafactorParamState f;
  if (kind == "adamw") fields = fields_of(a);
  else if (kind == "came") fields = fields_of(c);
  else if (kind == "lamb") fields = fields_of(l);
  else fields = fields_of(f);
  std::vector<std::string> names;
  for (const auto& field : fields) names.emplace_back(field.first);
  return names;
}

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

template <class State>
bool export_one(torch::optim::OptimizerParamState* base, NamedOptimizerState& out, const std::string& name,
                const torch::Tensor& p) {
  auto* s = dynamic_cast<State*>(base);
  if (s == nullptr) return false;
  for (auto& [field, t] : fields_of(*s)) {
    if (t->defined()) out.fields[field][name] = t->detach().clone(at::MemoryFormat::Contiguous);
  }
  out.steps[name] = static_cast<int64_t>(s->step());
  out.shapes[name] = p.sizes().vec();
  return true;
}

template <class State>
std::unique_ptr<torch::optim::OptimizerParamState> import_one(const NamedOptimizerState& st, const std::string& name,
                                                              const torch::Tensor& p) {
  auto s = std::make_unique<State>();
  const std::vector<int64_t> shape = p.sizes().vec();
  for (auto& [field, t] : fields_of(*s)) {
    auto f = st.fields.find(field);
    if (f == st.fields.end()) continue;
    auto it = f->second.find(name);
    if (it == f->second.end()) continue;
    check_field_shape(field, name, it->second, shape);
    // Always a copy: the optimizer updates its state in place.
    *t = it->second.detach().to(p.device(), torch::kFloat, /*non_blocking=*/false, /*copy=*/true)
             .contiguous();
  }
  auto step = st.steps.find(name);
  using Step = std::decay_t<decltype(s->step())>;
  s->step(static_cast<Step>(step != st.steps.end() ? step->second : st.max_step()));
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
  if (field == "exp_avg") return StateFieldKind::first;
  if (field == "exp_avg_sq" || field == "max_exp_avg_sq") return StateFieldKind::second;
  if (field == "exp_avg_sq_row" || field == "exp_avg_res_row") return StateFieldKind::factor_row;
  if (field == "exp_avg_sq_col" || field == "exp_avg_res_col") return StateFieldKind::factor_col;
  throw std::invalid_argument("unknown optimizer state field '" + field + "'");
}

NamedParams named_parameters(const torch::nn::Module& module) {
  NamedParams out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

std::string optimizer_kind(const torch::optim::Optimizer& opt) {
  if (dynamic_cast<const torch::optim::AdamW*>(&opt) != nullptr) return "adamw";
  if (dynamic_cast<const CAME*>(&opt) != nullptr) return "came";
  if (dynamic_cast<const LAMB*>(&opt) != nullptr) return "lamb";
  if (dynamic_cast<const Adafactor*>(&opt) != nullptr) return "adafactor";
  throw std::invalid_argument("optimizer state projection: unsupported optimizer type");
}

NamedOptimizerState export_optimizer_state(torch::optim::Optimizer& opt, const NamedParams& params) {
  torch::NoGradGuard no_grad;
  NamedOptimizerState out;
  out.optimizer = optimizer_kind(opt);
  for (const auto& [name, p] : params) {
    auto it = opt.state().find(detail::state_key(p));
    if (it == opt.state().end()) continue;
    auto* base = it->second.get();
    const bool known = export_one<torch::optim::AdamWParamState>(base, out, name, p) ||
                       export_one<CAMEParamState>(base, out, name, p) || export_one<LAMBParamState>(base, out, name, p) ||
                       export_one<AdafactorParamState>(base, out, name, p);
    if (!known) throw std::invalid_argument("optimizer state of '" + name + "' has an unsupported type");
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
  const std::vector<std::string> held = field_names(kind);
  for (const auto& [field, tensors] : state.fields) {
    if (tensors.empty()) continue;
    if (std::find(held.begin(), held.end(), field) == held.end()) {
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
    std::unique_ptr<torch::optim::OptimizerParamState> s;
    if (kind == "adamw") s = import_one<torch::optim::AdamWParamState>(state, name, p);
    else if (kind == "came") s = import_one<CAMEParamState>(state, name, p);
    else if (kind == "lamb") s = import_one<LAMBParamState>(state, name, p);
    else s = import_one<AdafactorParamState>(state, name, p);
    opt.state()[detail::state_key(p)] = std::move(s);
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
