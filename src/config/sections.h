// Section parsers shared by the two config loaders (run_config.cpp, finetune_config.cpp); private
// to src/config. Each reads its keys through the caller's YamlReader, so unknown keys are still
// reported by that reader's finish().
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>

#include "vcycle/config/run_config.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle::sections {

uint64_t parse_seed(YamlReader& r);
std::string parse_device(YamlReader& r);
int parse_threads(YamlReader& r);

// name (default: the file's stem), seed, device and threads, into any config that has them.
template <class Config>
void parse_identity(YamlReader& r, Config& cfg) {
  cfg.name = r.get_or<std::string>("name", std::filesystem::path(r.file()).stem().string());
  cfg.seed = parse_seed(r);
  cfg.device = parse_device(r);
  cfg.threads = parse_threads(r);
}

// The keys of a training phase both configs share: steps, optimizer, lr, warmup, schedule,
// min_lr_ratio.
void parse_phase_training(YamlReader& r, PhaseConfig& p);

// The data keys both configs share: train, valid (required) and batch_size.
void parse_data_files(YamlReader& d, DataConfig& data);

// `optimizers:`: the map as written (for the fingerprint) and parsed through the optimizer registry.
template <class Config>
void parse_optimizers(YamlReader& r, Config& cfg) {
  cfg.optimizers = r.node("optimizers");
  cfg.optimizer_configs = optim::OptimizerConfigs(cfg.optimizers, r.file());
}

// eval: { every (default 100), batches }.
EvalConfig parse_eval(YamlReader& r, int64_t default_batches);

// output (default runs/<name>), not empty.
std::string parse_output(YamlReader& r, const std::string& name);

// `key` as one of `values` (spelled by to_string), `fallback` when absent; otherwise ConfigError
// "unknown <what> 'x' (valid: a, b)".
template <class Enum>
Enum parse_enum(YamlReader& r, const std::string& key, Enum fallback, std::initializer_list<Enum> values,
                const std::string& what = "value") {
  const std::string v = r.get_or<std::string>(key, to_string(fallback));
  std::string list;
  for (Enum e : values) {
    if (to_string(e) == v) return e;
    list += (list.empty() ? "" : ", ") + to_string(e);
  }
  r.fail(key, "unknown " + what + " '" + v + "' (valid: " + list + ")");
}

}  // namespace vcycle::sections
