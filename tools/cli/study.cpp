// `vcycle study`: savings against tuned baselines across budgets (schedules/study.h).
#include <iostream>
#include <memory>

#include "commands.h"
#include "vcycle/core/runtime.h"
#include "vcycle/core/stop_signal.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/study.h"

namespace vcycle::cli {

namespace {

struct StudyArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string rule = budget_rule_name(kDefaultBudgetRule);
  StudyOptions options;
};

}  // namespace

void add_study_command(CLI::App& app) {
  auto args = std::make_shared<StudyArgs>();
  auto* cmd = app.add_subcommand(
      "study", "Savings of the V-cycle against lr-tuned baselines at several budgets (study.json, study.md, plots)");
  cmd->add_option("config", args->config, "run config (YAML)")->required();
  cmd->add_option("--budgets", args->options.budgets, "budget multipliers of the config, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--baseline-lrs", args->options.baseline_lrs,
                  "the baseline's learning-rate grid, comma-separated (default: its config lr × 0.5, 1, 2)")
      ->delimiter(',');
  cmd->add_option("--vcycle-lr-scales", args->options.vcycle_lr_scales,
                  "the V-cycle's trials: every phase's lr times each scale, comma-separated; no more trials than the "
                  "baseline's grid")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--reference", args->options.reference,
                  "a finished study directory (e.g. the AdamW config's <output>/study) whose tuned baselines the "
                  "V-cycle is also compared with: FLOPs to their loss and optimizer memory");
  cmd->add_option("--seeds", args->options.seeds, "seeds per budget (the config's seed, seed + 1, ...)")->capture_default_str();
  cmd->add_option("--rule", args->rule, "how the V-cycle's phases grow with the budget: fixed_small | proportional")
      ->capture_default_str();
  cmd->add_option("--set", args->overrides, "override a config key, e.g. --set phases[1].lr=2e-3 (repeatable)");
  cmd->add_flag("--resume", args->options.resume, "continue unfinished sub-runs (finished ones are always reused)");
  cmd->add_flag("--quiet", args->options.quiet, "no progress lines");
  cmd->callback([args] {
    args->options.rule = budget_rule_from_name(args->rule, "--rule");
    validate_study_options(args->options);
    const RunConfig cfg = load_config(args->config, args->overrides);
    runtime_init(cfg.threads);
    install_stop_handlers();  // a stopped sub-run keeps a checkpoint; `study --resume` continues it
    auto adapter = make_model(cfg);
    std::cout << run_study(cfg, *adapter, args->options).markdown;
  });

  auto dir = std::make_shared<std::string>();
  auto* report = app.add_subcommand("study-report", "Regenerate study.json, study.md and the plots of a study directory");
  report->add_option("study_dir", *dir, "the study's directory (<output>/study)")->required();
  report->callback([dir] { std::cout << write_study_report(*dir).markdown; });
}

}  // namespace vcycle::cli
