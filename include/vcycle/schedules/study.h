// `vcycle study`: the V-cycle's savings as a function of the training budget, against baselines
// whose learning rate was tuned.
//
// For every budget m and seed:
//   1. the config is scaled to m (budget.h);
//   2. the baseline is trained once per learning rate of the grid; the best final validation loss
//      is the target L*(m) — the baseline gets the tuning;
//   3. the V-cycle is trained once per lr scale of `vcycle_lr_scales` (every phase's lr times the
//      scale; by default one trial at the config's lrs, and never more trials than the baseline
//      gets), the best final validation loss is kept, and its cost to reach L*(m) is read off its
//      eval curve by linear interpolation, exactly as the run report does (report.h);
//   4. with a `reference` study (e.g. the AdamW study of the same model), the V-cycle is also
//      compared with that study's tuned baseline: FLOPs to its L*(m) and peak optimizer state.
// Every sub-run is an ordinary run directory under <output>/study/:
//   b<m>/s<seed>/baseline-lr<lr>/   b<m>/s<seed>/vcycle-<rule>/   b<m>/s<seed>/vcycle-<rule>-lrx<scale>/
// so a finished one with the same config is reused and an unfinished one continues with `resume`.
// Writes study_plan.json (what was asked), study.json and study.md (the results, recomputable from
// the plan and the sub-runs' metrics alone: write_study_report) and, with gnuplot, study_savings.svg
// and one loss_vs_flops_b<m>.svg per budget.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vcycle/config/run_config.h"
#include "vcycle/models/model_adapter.h"
#include "vcycle/schedules/budget.h"

namespace vcycle {

struct StudyOptions {
  std::vector<double> budgets{1, 3};  // multipliers of the config's budget
  std::vector<double> baseline_lrs;   // the baseline's lr grid; empty = its config lr × {0.5, 1, 2}
  int seeds = 1;                      // seeds cfg.seed, cfg.seed + 1, ...
  std::vector<double> vcycle_lr_scales{1};  // the V-cycle's trials: every phase's lr × each scale
  BudgetRule rule = kDefaultBudgetRule;
  std::string reference;  // a study directory whose tuned baselines the V-cycle is also compared with
  bool resume = false;  // continue unfinished sub-runs
  bool quiet = false;   // no progress lines
};

// Checks the options (budgets positive and finite, positive lrs and lr scales, no more V-cycle trials
// than baseline trials, seeds >= 1, a reference that holds a study.json); InputError naming the flag
// (--budgets, --baseline-lrs, --vcycle-lr-scales, --seeds, --reference).
void validate_study_options(const StudyOptions& options);

// The directory a study of `cfg` writes: <output>/study.
std::string study_dir(const RunConfig& cfg);

struct StudySummary {
  std::string markdown;  // study.md, also printed by `vcycle study`
};

// Runs (or reuses) every sub-run, then writes the study's report.
StudySummary run_study(const RunConfig& cfg, const ModelAdapter& adapter, const StudyOptions& options);

// Recomputes study.json, study.md and the plots of `dir` from its study_plan.json and the sub-runs'
// metrics.
StudySummary write_study_report(const std::string& dir);

}  // namespace vcycle
