// Parsing and validation of fine-tuning configs; see include/vcycle/config/finetune_config.h.
#include "vcycle/config/finetune_config.h"

#include <filesystem>

#include "sections.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {

namespace {

void require_file(const std::string& file, const YAML::Node& node, const std::string& key, const std::string& path,
                  const std::string& hint) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    const std::string kind = file_kind(path);
    throw ConfigError(yaml_where(file, node), key,
                      "file '" + path + "' " + (kind == "missing" ? "does not exist" + hint : "is " + kind + ", not a regular file"));
  }
}

// data: read first, as the base config is loaded with these paths in place of its own. The
// tokenizer stays empty when not given (the base run's is taken then).
DataConfig parse_finetune_data(YamlReader& r, const YAML::Node& root) {
  YamlReader d(r.node("data"), r.file(), "data");
  if (!root["data"].IsDefined()) r.fail("data", "missing (expected a map with train and valid)");
  DataConfig data;
  sections::parse_data_files(d, data);
  data.tokenizer = d.has("tokenizer") ? d.get<std::string>("tokenizer") : std::string();
  d.finish();
  for (const auto& [key, file] : {std::pair<std::string, std::string>{"data.train", data.train}, {"data.valid", data.valid}}) {
    require_file(r.file(), root["data"], key, file, " (tokenize the downstream text with `vcycle prepare` first)");
  }
  return data;
}

// base: the trained run, its config loaded with our data files.
void parse_base(YamlReader& r, const YAML::Node& root, const BaseConfigLoader& load_base, FinetuneConfig& cfg) {
  const std::string& path = r.file();
  YamlReader b(r.node("base"), path, "base");
  if (!root["base"].IsDefined()) r.fail("base", "missing (expected a map with config and checkpoint)");
  const std::string base_config = b.get<std::string>("config");
  cfg.base_checkpoint = b.get<std::string>("checkpoint");
  b.finish();
  require_file(path, root["base"], "base.config", base_config, "");
  require_file(path, root["base"], "base.checkpoint", cfg.base_checkpoint,
               " (train the base first: `vcycle train` or `vcycle run` with base.config)");
  try {
    cfg.base = load_base(base_config, {"data.train=" + cfg.data.train, "data.valid=" + cfg.data.valid});
  } catch (const InputError& e) {
    throw ConfigError(yaml_where(path, root["base"]), "base.config", e.what());
  }
  if (cfg.data.tokenizer.empty()) cfg.data.tokenizer = cfg.base.data.tokenizer;
  if (cfg.data.tokenizer != cfg.base.data.tokenizer) {
    throw ConfigError(yaml_where(path, root["data"]), "data.tokenizer",
                      "'" + cfg.data.tokenizer + "' differs from the base run's tokenizer '" + cfg.base.data.tokenizer + "'");
  }
}

void parse_lora(YamlReader& r, const YAML::Node& root, FinetuneConfig& cfg) {
  YamlReader l(r.node("lora"), r.file(), "lora");
  if (!root["lora"].IsDefined()) r.fail("lora", "missing (expected a map with r, alpha, targets)");
  cfg.lora.r(l.get_or<int64_t>("r", 8));
  if (cfg.lora.r() < 1) l.fail("r", "must be >= 1, got " + std::to_string(cfg.lora.r()));
  cfg.lora.alpha(l.get_or<double>("alpha", 2.0 * static_cast<double>(cfg.lora.r())));
  if (!(cfg.lora.alpha() > 0)) l.fail("alpha", "must be > 0, got " + std::to_string(cfg.lora.alpha()));
  cfg.lora.dropout(l.get_or<double>("dropout", 0.0));
  if (!(cfg.lora.dropout() >= 0 && cfg.lora.dropout() < 1)) {
    l.fail("dropout", "must be in [0, 1), got " + std::to_string(cfg.lora.dropout()));
  }
  cfg.targets = l.get<std::vector<std::string>>("targets");
  if (cfg.targets.empty()) l.fail("targets", "must list at least one pattern");
  l.finish();
}

// The training phase, flat at the top level, and the keys that go with it.
void parse_training(YamlReader& r, FinetuneConfig& cfg) {
  sections::parse_phase_training(r, cfg.phase);
  cfg.phase.batch_size = cfg.data.batch_size;
  cfg.phase.grad_accum = 1;
  sections::parse_optimizers(r, cfg);
  cfg.eval = sections::parse_eval(r, 10);
  cfg.max_grad_norm = r.get_or<double>("max_grad_norm", 1.0);
  if (!(cfg.max_grad_norm >= 0)) {
    r.fail("max_grad_norm", "must be >= 0 (0 disables clipping), got " + std::to_string(cfg.max_grad_norm));
  }
  cfg.log_every = r.get_or<int64_t>("log_every", 25);
  if (cfg.log_every <= 0) r.fail("log_every", "must be > 0, got " + std::to_string(cfg.log_every));
}

}  // namespace

FinetuneConfig load_finetune_config_with(const std::string& path, const std::vector<std::string>& overrides,
                                         const BaseConfigLoader& load_base) {
  YAML::Node root = load_yaml_with_overrides(path, overrides);
  if (!root.IsMap()) throw ConfigError(path, "", "expected a YAML map at the top level, got " + yaml_describe(root));
  FinetuneConfig cfg;
  cfg.file = path;
  YamlReader r(root, path, "");
  sections::parse_identity(r, cfg);
  cfg.data = parse_finetune_data(r, root);
  parse_base(r, root, load_base, cfg);
  parse_lora(r, root, cfg);
  parse_training(r, cfg);
  cfg.output = sections::parse_output(r, cfg.name);
  r.finish();
  return cfg;
}

}  // namespace vcycle
