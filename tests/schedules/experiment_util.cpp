#include "experiment_util.h"

#include <fstream>

#include "vcycle/config/run_config.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/schedules/report.h"

namespace vcycle::test {

nlohmann::json run_baseline_and_vcycle(const std::string& config_path) {
  const RunConfig cfg = load_config(config_path);
  auto adapter = make_model(cfg);
  run_cycle(cfg, *adapter, cfg.baseline_phases(), cfg.output + "/baseline", CycleOptions{false, "baseline", true});
  run_cycle(cfg, *adapter, cfg.phases, cfg.output + "/vcycle", CycleOptions{false, "vcycle", true});
  write_report(cfg.output);
  return nlohmann::json::parse(std::ifstream(cfg.output + "/report.json"));
}

std::vector<nlohmann::json> metrics_rows(const std::string& metrics_path, const std::string& type) {
  std::vector<nlohmann::json> rows;
  for (const auto& line : read_jsonl_lines(metrics_path)) {
    auto row = nlohmann::json::parse(line);
    if (row["type"] == type) rows.push_back(row);
  }
  return rows;
}

}  // namespace vcycle::test
