// Parsing and validation of fine-tuning configs; see include/vcycle/schedules/finetune.h.
#include <filesystem>

#include "vcycle/core/errors.h"
#include "vcycle/schedules/finetune.h"
#include "vcycle/optim/registry.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {

namespace fs = std::filesystem;

namespace {

void require_file(const std::string& file, const YAML::Node& node, const std::string& key, const std::string& path,
                  const std::string& hint) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw ConfigError(yaml_where(file, node), key, "file '" + path + "' does not exist" + hint);
}

}  // namespace

FinetuneConfig load_finetune_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = load_yaml_with_overrides(path, overrides);
  if (!root.IsMap()) throw ConfigError(path, "", "expected a YAML map at the top level, got " + yaml_describe(root));

  FinetuneConfig cfg;
  cfg.file = path;
  YamlReader r(root, path, "");
  cfg.name = r.get_or<std::string>("name", fs::path(path).stem().string());
  const int64_t seed = r.get_or<int64_t>("seed", 1234);
  if (seed < 0) r.fail("seed", "must be >= 0, got " + std::to_string(seed));
  cfg.seed = static_cast<uint64_t>(seed);
  cfg.device = r.get_or<std::string>("device", "cpu");
  if (!(cfg.device == "cpu" || cfg.device == "cuda" || cfg.device.rfind("cuda:", 0) == 0)) {
    r.fail("device", "unknown device '" + cfg.device + "' (valid: cpu, cuda, cuda:N)");
  }
  cfg.threads = r.get_or<int>("threads", 0);
  if (cfg.threads < 0) r.fail("threads", "must be >= 0 (0 = all cores), got " + std::to_string(cfg.threads));

  // ---- data first: the base config is loaded with these paths in place of its own.
  {
    YamlReader d(r.node("data"), path, "data");
    if (!root["data"].IsDefined()) r.fail("data", "missing (expected a map with train and valid)");
    cfg.data.train = d.get<std::string>("train");
    cfg.data.valid = d.get<std::string>("valid");
    cfg.data.batch_size = d.get_or<int64_t>("batch_size", 16);
    if (cfg.data.batch_size <= 0) d.fail("batch_size", "must be > 0, got " + std::to_string(cfg.data.batch_size));
    const bool own_tokenizer = d.has("tokenizer");
    if (own_tokenizer) cfg.data.tokenizer = d.get<std::string>("tokenizer");
    d.finish();
    for (const auto& [key, file] : {std::pair<std::string, std::string>{"data.train", cfg.data.train}, {"data.valid", cfg.data.valid}}) {
      require_file(path, root["data"], key, file, " (tokenize the downstream text with `vcycle prepare` first)");
    }
    cfg.data.tokenizer = own_tokenizer ? cfg.data.tokenizer : std::string();
  }
  // ---- base: the trained run.
  {
    YamlReader b(r.node("base"), path, "base");
    if (!root["base"].IsDefined()) r.fail("base", "missing (expected a map with config and checkpoint)");
    const std::string base_config = b.get<std::string>("config");
    cfg.base_checkpoint = b.get<std::string>("checkpoint");
    b.finish();
    require_file(path, root["base"], "base.config", base_config, "");
    require_file(path, root["base"], "base.checkpoint", cfg.base_checkpoint,
                 " (train the base first: `vcycle train` or `vcycle run` with base.config)");
    try {
      cfg.base = load_config(base_config, {"data.train=" + cfg.data.train, "data.valid=" + cfg.data.valid});
    } catch (const InputError& e) {
      throw ConfigError(yaml_where(path, root["base"]), "base.config", e.what());
    }
    if (cfg.data.tokenizer.empty()) cfg.data.tokenizer = cfg.base.data.tokenizer;
    if (cfg.data.tokenizer != cfg.base.data.tokenizer) {
      throw ConfigError(yaml_where(path, root["data"]), "data.tokenizer",
                        "'" + cfg.data.tokenizer + "' differs from the base run's tokenizer '" + cfg.base.data.tokenizer + "'");
    }
  }
  // ---- lora
  {
    YamlReader l(r.node("lora"), path, "lora");
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
  // ---- the training phase, flat at the top level
  cfg.phase.steps = r.get_positive<int64_t>("steps");
  cfg.phase.optimizer = r.get_or<std::string>("optimizer", "adamw");
  if (!optim::is_optimizer_name(cfg.phase.optimizer)) r.fail("optimizer", "unknown optimizer '" + cfg.phase.optimizer + "' (valid: " + optim::optimizer_name_list() + ")");
  cfg.phase.lr = r.get_or<double>("lr", 1e-3);
  if (!(cfg.phase.lr > 0)) r.fail("lr", "must be > 0, got " + std::to_string(cfg.phase.lr));
  cfg.phase.warmup = r.get_or<int64_t>("warmup", 0);
  if (cfg.phase.warmup < 0) r.fail("warmup", "must be >= 0, got " + std::to_string(cfg.phase.warmup));
  const std::string schedule = r.get_or<std::string>("schedule", "cosine");
  if (schedule == "cosine") cfg.phase.schedule = LrSchedule::cosine;
  else if (schedule == "constant") cfg.phase.schedule = LrSchedule::constant;
  else r.fail("schedule", "unknown schedule '" + schedule + "' (valid: constant, cosine)");
  cfg.phase.min_lr_ratio = r.get_or<double>("min_lr_ratio", 0.1);
  if (cfg.phase.min_lr_ratio < 0 || cfg.phase.min_lr_ratio > 1) {
    r.fail("min_lr_ratio", "must be in [0, 1], got " + std::to_string(cfg.phase.min_lr_ratio));
  }
  cfg.phase.batch_size = cfg.data.batch_size;
  cfg.phase.grad_accum = 1;
  cfg.optimizers = r.node("optimizers");
  cfg.optimizer_configs = optim::OptimizerConfigs(cfg.optimizers, path);
  {
    YamlReader e(r.node("eval"), path, "eval");
    cfg.eval.every = e.get_or<int64_t>("every", 100);
    cfg.eval.batches = e.get_or<int64_t>("batches", 10);
    if (cfg.eval.every <= 0) e.fail("every", "must be > 0, got " + std::to_string(cfg.eval.every));
    if (cfg.eval.batches <= 0) e.fail("batches", "must be > 0, got " + std::to_string(cfg.eval.batches));
    e.finish();
  }
  cfg.max_grad_norm = r.get_or<double>("max_grad_norm", 1.0);
  if (!(cfg.max_grad_norm >= 0)) r.fail("max_grad_norm", "must be >= 0 (0 disables clipping), got " + std::to_string(cfg.max_grad_norm));
  cfg.log_every = r.get_or<int64_t>("log_every", 25);
  if (cfg.log_every <= 0) r.fail("log_every", "must be > 0, got " + std::to_string(cfg.log_every));
  cfg.output = r.get_or<std::string>("output", "runs/" + cfg.name);
  if (cfg.output.empty()) r.fail("output", "must not be empty");
  r.finish();
  return cfg;
}

}  // namespace vcycle
