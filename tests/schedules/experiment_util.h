// Helpers for tests that run a whole experiment in-process and read its metrics.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vcycle::test {

// Loads the config at `path`, runs its baseline and V-cycle quietly and writes the report; returns
// report.json.
nlohmann::json run_baseline_and_vcycle(const std::string& config_path);

// The rows of a metrics.jsonl whose "type" is `type`, in file order.
std::vector<nlohmann::json> metrics_rows(const std::string& metrics_path, const std::string& type);

}  // namespace vcycle::test
