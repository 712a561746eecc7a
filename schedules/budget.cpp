// Budget scaling of a config; see include/vcycle/schedules/budget.h.
#include "vcycle/schedules/budget.h"

#include <cmath>

#include <fmt/format.h>

#include "vcycle/core/errors.h"
#include "vcycle/core/flops.h"
#include "vcycle/schedules/level_plan.h"

namespace vcycle {

BudgetRule budget_rule_from_name(const std::string& name, const std::string& flag) {
  if (name == "proportional") return BudgetRule::proportional;
  if (name == "fixed_small") return BudgetRule::fixed_small;
  throw InputError(flag + ": unknown budget rule '" + name + "' (valid: fixed_small, proportional)");
}

std::string budget_rule_name(BudgetRule rule) {
  return rule == BudgetRule::proportional ? "proportional" : "fixed_small";
}

double phase_train_flops(const RunConfig& cfg, const ModelAdapter& adapter, const PhaseConfig& phase) {
  const LevelPlan plan(cfg, adapter, phase.level);
  const double rows = static_cast<double>(cfg.batch_size_of(phase) * cfg.grad_accum_of(phase));
  return static_cast<double>(phase.steps) * rows * static_cast<double>(adapter.context()) *
         train_flops_per_token(plan.flops(phase.level));
}

namespace {

int64_t scaled_steps(int64_t steps, double m, const std::string& what) {
  const auto s = static_cast<int64_t>(std::llround(static_cast<double>(steps) * m));
  if (s < 1) throw InputError(fmt::format("--budget {}: {} would get {} steps (fewer than one)", m, what, s));
  return s;
}

// fixed_small: all phases but the last keep their steps; the last absorbs the rest of m× the 1×
// V-cycle's FLOPs, so F_vcycle(m) / F_baseline(m) = F_vcycle(1) / F_baseline(1).
void scale_last_phase(const RunConfig& cfg, const ModelAdapter& adapter, double m, std::vector<PhaseConfig>& phases) {
  double total = 0, fixed = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const double f = phase_train_flops(cfg, adapter, phases[i]);
    total += f;
    if (i + 1 < phases.size()) fixed += f;
  }
  PhaseConfig& last = phases.back();
  const double per_step = phase_train_flops(cfg, adapter, last) / static_cast<double>(last.steps);
  const double steps = (m * total - fixed) / per_step;
  if (!(steps >= 1)) {
    throw InputError(fmt::format("--budget {}: too small for the fixed_small rule: the phases it keeps fixed already "
                                 "cost {:.3g} FLOPs of the V-cycle's {:.3g} at this budget",
                                 m, fixed, m * total));
  }
  last.steps = static_cast<int64_t>(std::llround(steps));
}

}  // namespace

RunConfig scale_budget(const RunConfig& cfg, const ModelAdapter& adapter, double m, BudgetRule rule) {
  if (!(m > 0) || !std::isfinite(m)) throw InputError(fmt::format("--budget must be a positive number, got {}", m));
  RunConfig out = cfg;
  if (out.baseline) out.baseline->steps = scaled_steps(cfg.baseline->steps, m, "the baseline");
  if (out.phases.empty()) return out;
  if (rule == BudgetRule::proportional || out.phases.size() == 1) {
    for (size_t i = 0; i < out.phases.size(); ++i) {
      out.phases[i].steps = scaled_steps(cfg.phases[i].steps, m, fmt::format("phases[{}]", i));
    }
  } else {
    scale_last_phase(cfg, adapter, m, out.phases);
  }
  return out;
}

}  // namespace vcycle
