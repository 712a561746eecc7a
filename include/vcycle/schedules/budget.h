// Scaling a config's training budget by a factor m (`vcycle run --budget m`, `vcycle study`).
//
// The baseline always gets m× its steps. How the V-cycle's phases grow is the budget rule:
//   proportional — every phase gets m× its steps: the small level's share of the budget stays what
//                  it was at 1× (the default).
//   fixed_small  — every phase but the last keeps its steps (the small levels are trained for a fixed
//                  number of tokens, as "Stacking Your Transformers" (Du et al., 2024) sizes the small
//                  model's training by tokens rather than by a fraction of the budget); the last
//                  phase (level 1) grows so that the V-cycle's training FLOPs stay the same fraction
//                  of the baseline's as at 1×.
// Both keep the V-cycle's total training FLOPs at the 1× ratio to the baseline's (operator FLOPs,
// one per element written, are left out of that balance: they are < 0.1% of a phase). Warmups stay
// in steps; cosine schedules follow their (new) phase length.
#pragma once

#include <string>
#include <vector>

#include "vcycle/config/run_config.h"
#include "vcycle/models/model_adapter.h"

namespace vcycle {

enum class BudgetRule { proportional, fixed_small };

// The rule `vcycle study` and `vcycle run --budget` use unless told otherwise: proportional, the
// better of the two at 3x on the default GPT with AdamW (README "Budgets and the study": its V-cycle
// reached the tuned baseline's loss with 24.1% fewer FLOPs, fixed_small's ended 0.045 above it).
constexpr BudgetRule kDefaultBudgetRule = BudgetRule::proportional;

// "proportional" / "fixed_small"; InputError naming `flag` and listing the valid names otherwise.
BudgetRule budget_rule_from_name(const std::string& name, const std::string& flag);
std::string budget_rule_name(BudgetRule rule);

// Training FLOPs of one phase (steps × rows per step × context × per-token FLOPs at its level).
double phase_train_flops(const RunConfig& cfg, const ModelAdapter& adapter, const PhaseConfig& phase);

// `cfg` with its baseline and V-cycle phases scaled to budget `m` (> 0) by `rule`. InputError when m
// is not a positive finite number, or when a phase would get fewer than one step.
RunConfig scale_budget(const RunConfig& cfg, const ModelAdapter& adapter, double m, BudgetRule rule);

}  // namespace vcycle
