// `vcycle train` (the plain baseline), `vcycle run` (baseline + V-cycle + report), `vcycle report`.
#include <cmath>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vcycle/config.h"
#include "vcycle/cycle.h"
#include "vcycle/errors.h"
#include "vcycle/experiment.h"
#include "vcycle/metrics.h"
#include "vcycle/model_registry.h"
#include "vcycle/report.h"
#include "vcycle/runtime.h"

namespace vcycle::cli {

namespace fs = std::filesystem;

namespace {

struct RunArgs {
  std::string config;
  std::vector<std::string> overrides;
  bool resume = false;
  bool no_baseline = false;
  bool quiet = false;
};

void add_run_options(CLI::App* cmd, const std::shared_ptr<RunArgs>& args) {
  cmd->add_option("config", args->config, "run config (YAML)")->required();
  cmd->add_option("--set", args->overrides, "override a config key, e.g. --set phases[1].lr=2e-3 (repeatable)");
  cmd->add_flag("--resume", args->resume, "continue from the run's last checkpoint");
  cmd->add_flag("--quiet", args->quiet, "no progress lines");
}

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
  train->callback([train_args] {
    const RunConfig cfg = load_config(train_args->config, train_args->overrides);
    if (!cfg.baseline) throw ConfigError(cfg.file, "baseline", "missing: `vcycle train` trains the baseline section");
    runtime_init(cfg.threads);
    auto adapter = make_builtin_model(cfg);
    const std::string dir = (fs::path(cfg.output) / "baseline").string();
    const auto result = run_cycle(cfg, *adapter, cfg.baseline_phases(), dir,
                                  CycleOptions{train_args->resume, "baseline", train_args->quiet});
    print_curve(result.dir);
    std::cout << fmt::format("final validation loss {:.4f} (run directory {})\n", result.final_val_loss, result.dir);
  });

  auto run_args = std::make_shared<RunArgs>();
  auto* run = app.add_subcommand("run", "Train the baseline and the V-cycle of a config, then print the savings report");
  add_run_options(run, run_args);
  run->add_flag("--no-baseline", run_args->no_baseline, "skip the baseline (the report needs one in the output directory)");
  run->callback([run_args] {
    const RunConfig cfg = load_config(run_args->config, run_args->overrides);
    runtime_init(cfg.threads);
    auto adapter = make_builtin_model(cfg);
    const auto report = run_experiment(cfg, *adapter, ExperimentOptions{run_args->resume, run_args->no_baseline, run_args->quiet});
    if (report) std::cout << report->markdown;
  });

  auto report_dir = std::make_shared<std::string>();
  auto* report = app.add_subcommand("report", "Regenerate report.json, report.md and the plots of a run directory");
  report->add_option("run_dir", *report_dir, "the config's output directory (holds baseline/ and vcycle/)")->required();
  report->callback([report_dir] { std::cout << write_report(*report_dir).markdown; });
}

}  // namespace vcycle::cli
