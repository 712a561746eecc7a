// `vcycle train` (the plain baseline), `vcycle run` (baseline + V-cycle + report), `vcycle report`.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vcycle/config/run_config.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/core/distributed.h"
#include "vcycle/core/errors.h"
#include "vcycle/schedules/experiment.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/budget.h"
#include "vcycle/schedules/report.h"
#include "vcycle/core/runtime.h"
#include "vcycle/core/stop_signal.h"
#include "vcycle/io/run_info.h"

namespace vcycle::cli {

namespace fs = std::filesystem;

namespace {

struct RunArgs {
  std::string config;
  std::vector<std::string> overrides;
  bool resume = false;
  bool restart = false;
  bool allow_data_change = false;
  bool no_baseline = false;
  bool quiet = false;
  int nproc = 0;  // 0: not given
  double budget = 1;  // `run --budget m`: the config scaled to m× its budget (budget.h)
  std::string rule = budget_rule_name(kDefaultBudgetRule);
};

void add_run_options(CLI::App* cmd, const std::shared_ptr<RunArgs>& args) {
  cmd->add_option("config", args->config, "run config (YAML)")->required();
  cmd->add_option("--set", args->overrides, "override a config key, e.g. --set phases[1].lr=2e-3 (repeatable)");
  auto* resume = cmd->add_flag("--resume", args->resume, "continue from the run's last checkpoint");
  cmd->add_flag("--restart", args->restart, "start over from step 0 in a directory that holds a run (replaces it)")
      ->excludes(resume);
  cmd->add_flag("--allow-data-change", args->allow_data_change,
                "with --resume: continue although the data files changed since the run started");
  cmd->add_flag("--quiet", args->quiet, "no progress lines");
  cmd->add_option("--nproc", args->nproc,
                  "run N data-parallel worker processes on this machine (README \"Data-parallel runs\"); "
                  "without it, RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT from the environment are used");
}

// With --nproc N > 1 (and not already a worker): launches N local workers running this same command
// and returns true once they all succeeded. --nproc 1 runs in this process.
bool launch_if_asked(const RunArgs& args, bool nproc_given) {
  if (!nproc_given) return false;
  if (args.nproc < 1) throw InputError("--nproc must be >= 1, got " + std::to_string(args.nproc));
  if (args.nproc == 1) return false;
  if (std::getenv("WORLD_SIZE") != nullptr) {
    throw InputError("--nproc launches its own workers; unset WORLD_SIZE / RANK (or drop --nproc to join their group)");
  }
  launch_local_workers(args.nproc, strip_nproc_argument(command_line_arguments()));
  return true;
}

// Joins the data-parallel group of the environment (the single process without WORLD_SIZE).
DistContext join_group(const RunConfig& cfg) { return DistContext::init_from_env(cfg.distributed, cfg.device); }

// Prints the eval curve of a finished run as a small table.
void print_curve(const std::string& dir) {
  std::cout << fmt::format("\n{:>8} {:>12} {:>14} {:>10}\n", "step", "tokens", "train FLOPs", "val loss");
  for (const auto& line : read_jsonl_lines((fs::path(dir) / "metrics.jsonl").string())) {
    const auto row = nlohmann::json::parse(line);
    if (row.value("type", "") != "eval") continue;
    std::cout << fmt::format("{:>8} {:>12.4g} {:>14.4g} {:>10.4f}\n", row["global_step"].get<int64_t>(),
                             row["tokens"].get<double>(), row["train_flops"].get<double>(), row["val_loss"].is_number() ? row["val_loss"].get<double>() : NAN);
  }
}

}  // namespace

void add_train_commands(CLI::App& app) {
  auto train_args = std::make_shared<RunArgs>();
  auto* train = app.add_subcommand("train", "Train the plain baseline of a config (its `baseline:` section)");
  add_run_options(train, train_args);
  train->callback([train_args, train] {
    const RunConfig cfg = load_config(train_args->config, train_args->overrides);
    if (!cfg.baseline) throw ConfigError(cfg.file, "baseline", "missing: `vcycle train` trains the baseline section");
    if (launch_if_asked(*train_args, train->get_option("--nproc")->count() > 0)) return;
    runtime_init(cfg.threads);
    install_stop_handlers();
    auto adapter = make_model(cfg);
    const DistContext dist = join_group(cfg);
    const std::string dir = (fs::path(cfg.output) / "baseline").string();
    const auto result = run_cycle(cfg, *adapter, cfg.baseline_phases(), dir,
                                  CycleOptions{train_args->resume, "baseline", train_args->quiet, &dist,
                                               train_args->restart, train_args->allow_data_change});
    if (!dist.is_main()) return;
    // After the run: bad input must leave no output directory behind.
    write_run_info(cfg.output, cfg, train_args->config, train_args->overrides);
    print_curve(result.dir);
    std::cout << fmt::format("final validation loss {:.4f} (run directory {})\n", result.final_val_loss, result.dir);
  });

  auto run_args = std::make_shared<RunArgs>();
  auto* run = app.add_subcommand("run", "Train the baseline and the V-cycle of a config, then print the savings report");
  add_run_options(run, run_args);
  run->add_flag("--no-baseline", run_args->no_baseline, "skip the baseline (the report needs one in the output directory)");
  run->add_option("--budget", run_args->budget,
                  "train m× the config's budget, the V-cycle's phases scaled by --rule; output goes to <output>-x<m>")
      ->capture_default_str();
  run->add_option("--rule", run_args->rule, "with --budget: fixed_small | proportional (README \"Budgets\")")
      ->capture_default_str();
  run->callback([run_args, run] {
    RunConfig cfg = load_config(run_args->config, run_args->overrides);
    const bool scaled = run->get_option("--budget")->count() > 0;
    const BudgetRule rule = budget_rule_from_name(run_args->rule, "--rule");
    if (launch_if_asked(*run_args, run->get_option("--nproc")->count() > 0)) return;
    runtime_init(cfg.threads);
    install_stop_handlers();
    auto adapter = make_model(cfg);
    if (scaled) {
      cfg = scale_budget(cfg, *adapter, run_args->budget, rule);
      cfg.output += fmt::format("-x{:g}", run_args->budget);
    }
    const DistContext dist = join_group(cfg);
    const auto report = run_experiment(cfg, *adapter,
                                       ExperimentOptions{run_args->resume, run_args->no_baseline, run_args->quiet, &dist,
                                                         run_args->restart, run_args->allow_data_change});
    // After the run: bad input must leave no output directory behind.
    if (dist.is_main()) write_run_info(cfg.output, cfg, run_args->config, run_args->overrides);
    if (report) std::cout << report->markdown;
  });

  auto report_dir = std::make_shared<std::string>();
  auto* report = app.add_subcommand("report", "Regenerate report.json, report.md and the plots of a run directory");
  report->add_option("run_dir", *report_dir, "the config's output directory (holds baseline/ and vcycle/)")->required();
  report->callback([report_dir] { std::cout << write_report(*report_dir).markdown; });
}

}  // namespace vcycle::cli
