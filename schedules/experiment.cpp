// Baseline + V-cycle + report; see include/vcycle/schedules/experiment.h.
#include "vcycle/schedules/experiment.h"

#include <filesystem>
#include <iostream>

#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/run_lock.h"

namespace vcycle {

namespace fs = std::filesystem;

std::optional<ReportSummary> run_experiment(const RunConfig& cfg, const ModelAdapter& adapter,
                                            const ExperimentOptions& options) {
  if (cfg.phases.empty()) throw ConfigError(cfg.file, "phases", "missing: an experiment needs the V-cycle phases");
  static const DistContext single_process;
  const DistContext& dist = options.dist != nullptr ? *options.dist : single_process;
  const bool quiet = options.quiet || !dist.is_main();
  // The experiment directory (report, resolved config) has one writer too, for the whole run: a
  // `vcycle report` or a second run on it is refused while this one lives.
  if (dist.is_main()) lock_run_directory(cfg.output);
  if (cfg.baseline && !options.no_baseline) {
    const std::string dir = (fs::path(cfg.output) / "baseline").string();
    // Rank 0 decides (only it reads the output directory) and tells the others.
    const bool finished = dist.broadcast_int(
        dist.is_main() && cycle_finished(dir, config_fingerprint(cfg, cfg.baseline_phases())) ? 1 : 0,
        "whether the baseline is finished");
    if (finished) {
      if (!quiet) std::cerr << "[baseline] finished run with the same config found in " << dir << ", reusing it\n";
    } else {
      // The baseline is deterministic, so an unfinished one is always continued.
      run_cycle(cfg, adapter, cfg.baseline_phases(), dir,
                CycleOptions{!options.restart, "baseline", options.quiet, options.dist, options.restart,
                             options.allow_data_change});
    }
  }
  run_cycle(cfg, adapter, cfg.phases, (fs::path(cfg.output) / "vcycle").string(),
            CycleOptions{options.resume, "vcycle", options.quiet, options.dist, options.restart, options.allow_data_change});
  if (!dist.is_main()) return std::nullopt;  // rank 0 writes the report
  if (!fs::exists(fs::path(cfg.output) / "baseline" / "metrics.jsonl")) {
    std::cerr << "no baseline in " << cfg.output << ": report skipped (run without --no-baseline to get one)\n";
    return std::nullopt;
  }
  return write_report(cfg.output);
}

}  // namespace vcycle
