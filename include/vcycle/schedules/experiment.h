// One experiment = the plain baseline + the V-cycle of a config + the savings report. This is what
// `vcycle run` does; a program with its own model (see model_adapter.h) calls it with its adapter.
//
//   RunConfig cfg = load_config_unchecked("my.yaml");
//   MyAdapter adapter(cfg.model);
//   validate_model_config(cfg, adapter);
//   run_experiment(cfg, adapter, {});
#pragma once

#include "vcycle/config/run_config.h"
#include "vcycle/core/distributed.h"
#include "vcycle/models/model_adapter.h"
#include "vcycle/schedules/report.h"

namespace vcycle {

struct ExperimentOptions {
  bool resume = false;       // continue the V-cycle from its checkpoint (the baseline always continues)
  bool no_baseline = false;  // skip the baseline (and the report, unless one already exists)
  bool quiet = false;        // no progress lines
  const DistContext* dist = nullptr;  // data-parallel group (distributed.h); null = the single process
  bool restart = false;            // start both runs over from step 0 (a finished baseline of the same config is kept)
  bool allow_data_change = false;  // resume although the data files changed (cycle_runner.h)
};

// Runs `<output>/baseline` (unless finished with the same config, or skipped), then `<output>/vcycle`,
// then writes the report. Returns the report, or nullopt when there is no baseline to compare with.
std::optional<ReportSummary> run_experiment(const RunConfig& cfg, const ModelAdapter& adapter,
                                            const ExperimentOptions& options);

}  // namespace vcycle
