// What makes a run directory (or an export) self-describing: the resolved config and the versions
// and data it was made with, so that `vcycle export | generate | eval` need nothing but the directory.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vcycle/config/run_config.h"

namespace vcycle {

// "0.1.0" (vcycle/version.h) and "1.13.0" (the LibTorch this was built against).
std::string vcycle_version();
std::string libtorch_version();

// The config file after every `--set`, as YAML text.
std::string resolved_config_yaml(const std::string& config_path, const std::vector<std::string>& overrides);

// {vcycle_version, libtorch_version, config, data: {train, valid}} for a run config.
nlohmann::json run_info(const RunConfig& cfg);

// Writes config.resolved.yaml and run_info.json into `dir` (created if missing). RunError on I/O.
void write_run_info(const std::string& dir, const RunConfig& cfg, const std::string& config_path,
                    const std::vector<std::string>& overrides);

}  // namespace vcycle
