// Self-describing runs; see include/vcycle/io/run_info.h.
#include "vcycle/io/run_info.h"

#include <cstdint>
#include <filesystem>
#include <fstream>

#include <torch/version.h>

#include "vcycle/core/file_util.h"
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

nlohmann::json file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {{"path", path}, {"missing", true}};
  // FNV-1a over the bytes: cheap, streaming, and plenty to tell two data files apart.
  uint64_t h = 1469598103934665603ull, n = 0;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
    n += static_cast<uint64_t>(in.gcount());
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return {{"path", path}, {"bytes", n}, {"fnv1a64", hex}};
}

nlohmann::json run_info(const RunConfig& cfg) {
  nlohmann::json data = nlohmann::json::object();
  if (!cfg.data.train.empty()) data["train"] = file_fingerprint(cfg.data.train);
  if (!cfg.data.valid.empty()) data["valid"] = file_fingerprint(cfg.data.valid);
  return {{"vcycle_version", vcycle_version()}, {"libtorch_version", libtorch_version()}, {"config", cfg.file},
          {"data", data}};
}

void write_run_info(const std::string& dir, const RunConfig& cfg, const std::string& config_path,
                    const std::vector<std::string>& overrides) {
  fs::create_directories(dir);
  write_file_atomic((fs::path(dir) / kResolvedConfigFile).string(), resolved_config_yaml(config_path, overrides));
  write_file_atomic((fs::path(dir) / "run_info.json").string(), run_info(cfg).dump(2) + "\n");
}

}  // namespace vcycle
