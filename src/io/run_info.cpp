// Self-describing runs; see include/vcycle/io/run_info.h.
#include "vcycle/io/run_info.h"

#include <cstdint>
#include <filesystem>
#include <fstream>

#include <torch/version.h>

#include "vcycle/core/file_fingerprint.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/runtime.h"
#include "vcycle/core/yaml_util.h"
#include "vcycle/io/checkpoint_model.h"
#include "vcycle/version.h"

namespace vcycle {

namespace fs = std::filesystem;

std::string vcycle_version() { return VCYCLE_VERSION; }

std::string libtorch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

std::string resolved_config_yaml(const std::string& config_path, const std::vector<std::string>& overrides) {
  YAML::Emitter out;
  out << load_yaml_with_overrides(config_path, overrides);
  return std::string("# ") + config_path + " as resolved by vcycle " + vcycle_version() + " (after every --set)\n" +
         out.c_str() + "\n";
}

namespace {

// {path, bytes, fingerprint} of a data file; the fingerprint is the one resume checks
// (core/file_fingerprint.h), so both name a file's content the same way.
nlohmann::json data_file_info(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {{"path", path}, {"missing", true}};
  return {{"path", path}, {"bytes", fs::file_size(path, ec)}, {"fingerprint", file_fingerprint(path)}};
}

}  // namespace

nlohmann::json run_info(const RunConfig& cfg) {
  nlohmann::json data = nlohmann::json::object();
  if (!cfg.data.train.empty()) data["train"] = data_file_info(cfg.data.train);
  if (!cfg.data.valid.empty()) data["valid"] = data_file_info(cfg.data.valid);
  return {{"vcycle_version", vcycle_version()}, {"libtorch_version", libtorch_version()},
          {"blas", blas_description()}, {"config", cfg.file},
          {"data", data}};
}

void write_run_info(const std::string& dir, const RunConfig& cfg, const std::string& config_path,
                    const std::vector<std::string>& overrides) {
  fs::create_directories(dir);
  write_file_atomic((fs::path(dir) / kResolvedConfigFile).string(), resolved_config_yaml(config_path, overrides));
  write_file_atomic((fs::path(dir) / "run_info.json").string(), run_info(cfg).dump(2) + "\n");
}

}  // namespace vcycle
