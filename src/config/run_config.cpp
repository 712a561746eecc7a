// Run-config loading and validation; see include/vcycle/config/run_config.h.
#include "vcycle/config/run_config.h"

#include <zlib.h>

#include <filesystem>
#include <initializer_list>
#include <sstream>

#include "vcycle/core/errors.h"
#include "vcycle/models/registry.h"
#include "vcycle/optim/registry.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {

namespace fs = std::filesystem;

std::string lr_schedule_name(LrSchedule s) { return s == LrSchedule::constant ? "constant" : "cosine"; }

std::string to_string(OptimizerStateMode mode) { return mode == OptimizerStateMode::reset ? "reset" : "project"; }

std::string to_string(OnNonfinite mode) { return mode == OnNonfinite::stop ? "stop" : "skip_step"; }

std::vector<PhaseConfig> RunConfig::baseline_phases() const {
  if (!baseline) return {};
  return {*baseline};
}

// ---------------------------------------------------------------------------- sections
namespace {

LrSchedule parse_schedule(YamlReader& r, const std::string& key) {
  const std::string s = r.get_or<std::string>(key, "cosine");
  if (s == "cosine") return LrSchedule::cosine;
  if (s == "constant") return LrSchedule::constant;
  r.fail(key, "unknown schedule '" + s + "' (valid: constant, cosine)");
}

std::string one_of(YamlReader& r, const std::string& key, const std::string& fallback,
                   const std::vector<std::string>& valid) {
  const std::string v = r.get_or<std::string>(key, fallback);
  std::string list;
  for (const auto& x : valid) {
    if (x == v) return v;
    list += (list.empty() ? "" : ", ") + x;
  }
  r.fail(key, "unknown value '" + v + "' (valid: " + list + ")");
}

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

PhaseConfig parse_phase(const YAML::Node& node, const std::string& file, const std::string& path, bool has_level) {
  YamlReader r(node, file, path);
  if (!node.IsDefined() || node.IsNull()) throw ConfigError(file, path, "missing (expected a map)");
  PhaseConfig p;
  if (has_level) {
    p.level = r.get<int>("level");
    if (p.level < 1) r.fail("level", "must be >= 1, got " + std::to_string(p.level));
  }
  p.steps = r.get_positive<int64_t>("steps");
  p.optimizer = r.get_or<std::string>("optimizer", "adamw");
  if (!optim::is_optimizer_name(p.optimizer)) r.fail("optimizer", "unknown optimizer '" + p.optimizer + "' (valid: " + optim::optimizer_name_list() + ")");
  p.lr = r.get_or<double>("lr", 1e-3);
  if (!(p.lr > 0)) r.fail("lr", "must be > 0, got " + std::to_string(p.lr));
  p.warmup = r.get_or<int64_t>("warmup", 0);
  if (p.warmup < 0) r.fail("warmup", "must be >= 0, got " + std::to_string(p.warmup));
  p.schedule = parse_schedule(r, "schedule");
  p.batch_size = r.get_or<int64_t>("batch_size", 0);
  if (p.batch_size < 0) r.fail("batch_size", "must be > 0 (or 0 for data.batch_size), got " + std::to_string(p.batch_size));
  p.grad_accum = r.get_or<int64_t>("grad_accum", 0);
  if (p.grad_accum < 0) r.fail("grad_accum", "must be > 0 (or 0 for data.grad_accum), got " + std::to_string(p.grad_accum));
  p.min_lr_ratio = r.get_or<double>("min_lr_ratio", 0.1);
  if (p.min_lr_ratio < 0 || p.min_lr_ratio > 1) r.fail("min_lr_ratio", "must be in [0, 1], got " + std::to_string(p.min_lr_ratio));
  r.finish();
  return p;
}

void check_v_shape(const std::vector<PhaseConfig>& phases, int count, const std::string& file, const YAML::Node& node) {
  // 1 -> 2 -> ... -> K -> ... -> 2 -> 1: exactly 2K-1 phases, one level step at a time.
  std::vector<int> expected;
  for (int l = 1; l <= count; ++l) expected.push_back(l);
  for (int l = count - 1; l >= 1; --l) expected.push_back(l);
  std::string want, got;
  for (int l : expected) want += (want.empty() ? "" : " -> ") + std::to_string(l);
  for (const auto& p : phases) got += (got.empty() ? "" : " -> ") + std::to_string(p.level);
  bool ok = phases.size() == expected.size();
  for (size_t i = 0; ok && i < phases.size(); ++i) ok = phases[i].level == expected[i];
  if (!ok) {
    throw ConfigError(yaml_where(file, node), "phases",
                      "levels must walk the V shape " + want + " for levels.count = " + std::to_string(count) +
                          ", got " + (got.empty() ? "no phases" : got));
  }
}

}  // namespace

// ---------------------------------------------------------------------------- load
RunConfig parse_config(const YAML::Node& root, const std::string& file) {
  if (!root.IsMap()) throw ConfigError(file, "", "expected a YAML map at the top level, got " + yaml_describe(root));
  YamlReader r(root, file, "");
  RunConfig cfg;
  cfg.file = file;
  cfg.name = r.get_or<std::string>("name", fs::path(file).stem().string());
  const int64_t seed = r.get_or<int64_t>("seed", 1234);
  if (seed < 0) r.fail("seed", "must be >= 0, got " + std::to_string(seed));
  cfg.seed = static_cast<uint64_t>(seed);
  cfg.device = r.get_or<std::string>("device", "cpu");
  if (!(cfg.device == "cpu" || cfg.device == "cuda" || cfg.device.rfind("cuda:", 0) == 0)) {
    r.fail("device", "unknown device '" + cfg.device + "' (valid: cpu, cuda, cuda:N)");
  }
  cfg.precision = parse_enum(r, "precision", Precision::fp32, {Precision::fp32, Precision::bf16}, "precision");
  cfg.threads = r.get_or<int>("threads", 0);
  if (cfg.threads < 0) r.fail("threads", "must be >= 0 (0 = all cores), got " + std::to_string(cfg.threads));

  cfg.model = r.node("model");
  if (!cfg.model.IsDefined() || !cfg.model.IsMap()) r.fail("model", "missing or not a map (e.g. { type: gpt, layers: 4, ... })");
  {
    YAML::Node type = cfg.model["type"];
    cfg.model_type = type.IsDefined() ? yaml_as<std::string>(type, file, "model.type") : "gpt";
  }

  {
    YamlReader d(r.node("data"), file, "data");
    if (!r.has("data")) r.fail("data", "missing (expected { train: ..., valid: ... })");
    cfg.data.train = d.get<std::string>("train");
    cfg.data.valid = d.get<std::string>("valid");
    cfg.data.tokenizer = d.get_or<std::string>("tokenizer", "byte");
    cfg.data.batch_size = d.get_or<int64_t>("batch_size", 16);
    if (cfg.data.batch_size <= 0) d.fail("batch_size", "must be > 0, got " + std::to_string(cfg.data.batch_size));
    cfg.data.grad_accum = d.get_or<int64_t>("grad_accum", 1);
    if (cfg.data.grad_accum <= 0) d.fail("grad_accum", "must be > 0, got " + std::to_string(cfg.data.grad_accum));
    d.finish();
  }
  {
    YamlReader l(r.node("levels"), file, "levels");
    cfg.levels.count = l.get_or<int>("count", 1);
    if (cfg.levels.count < 1) l.fail("count", "must be >= 1, got " + std::to_string(cfg.levels.count));
    cfg.levels.width_factor = l.get_or<int64_t>("width_factor", 2);
    cfg.levels.depth_factor = l.get_or<int64_t>("depth_factor", 2);
    if (cfg.levels.width_factor < 1) l.fail("width_factor", "must be >= 1, got " + std::to_string(cfg.levels.width_factor));
    if (cfg.levels.depth_factor < 1) l.fail("depth_factor", "must be >= 1, got " + std::to_string(cfg.levels.depth_factor));
    if (cfg.levels.count > 1 && cfg.levels.width_factor == 1 && cfg.levels.depth_factor == 1) {
      l.fail("width_factor", "width_factor and depth_factor are both 1: the levels would not shrink");
    }
    {
      YamlReader p(l.node("pairing"), file, "levels.pairing");
      cfg.levels.width_pairing = parse_enum(p, "width", Pairing::halves, {Pairing::halves, Pairing::neighbors});
      cfg.levels.depth_pairing = parse_enum(p, "depth", Pairing::halves, {Pairing::halves, Pairing::neighbors});
      p.finish();
    }
    {
      YamlReader ip(l.node("interpolation"), file, "levels.interpolation");
      cfg.levels.alpha = ip.get_or<double>("alpha", 0.5);
      if (!(cfg.levels.alpha >= 0 && cfg.levels.alpha <= 1)) {
        ip.fail("alpha", "must be in [0, 1], got " + std::to_string(cfg.levels.alpha));
      }
      cfg.levels.interpolation_mode =
          parse_enum(ip, "mode", InterpolationMode::fixed, {InterpolationMode::fixed, InterpolationMode::norm_matched});
      ip.finish();
    }
    cfg.levels.optimizer_state = parse_enum(l, "optimizer_state", OptimizerStateMode::reset,
                                            {OptimizerStateMode::reset, OptimizerStateMode::project});
    l.finish();
  }
  {
    YAML::Node phases = r.node("phases");
    if (!phases.IsDefined() || phases.IsNull()) {
      if (cfg.levels.count > 1) r.fail("phases", "missing: a V-cycle with levels.count > 1 needs its phases");
    } else {
      if (!phases.IsSequence()) r.fail("phases", "expected a list of phases, got " + yaml_describe(phases));
      for (size_t i = 0; i < phases.size(); ++i) {
        cfg.phases.push_back(parse_phase(phases[i], file, "phases[" + std::to_string(i) + "]", true));
      }
      check_v_shape(cfg.phases, cfg.levels.count, file, phases);
    }
  }
  if (r.has("baseline")) cfg.baseline = parse_phase(r.node("baseline"), file, "baseline", false);
  if (cfg.phases.empty() && !cfg.baseline) r.fail("baseline", "the config has neither phases nor a baseline: nothing to train");

  cfg.optimizers = r.node("optimizers");
  cfg.optimizer_configs = optim::OptimizerConfigs(cfg.optimizers, file);
  {
    YamlReader e(r.node("eval"), file, "eval");
    cfg.eval.every = e.get_or<int64_t>("every", 100);
    cfg.eval.batches = e.get_or<int64_t>("batches", 20);
    if (cfg.eval.every <= 0) e.fail("every", "must be > 0, got " + std::to_string(cfg.eval.every));
    if (cfg.eval.batches <= 0) e.fail("batches", "must be > 0, got " + std::to_string(cfg.eval.batches));
    e.finish();
  }
  {
    YamlReader t(r.node("train"), file, "train");
    cfg.train.max_grad_norm = t.get_or<double>("max_grad_norm", 1.0);
    if (cfg.train.max_grad_norm < 0) t.fail("max_grad_norm", "must be >= 0 (0 disables clipping), got " + std::to_string(cfg.train.max_grad_norm));
    cfg.train.checkpoint_every = t.get_or<int64_t>("checkpoint_every", 200);
    if (cfg.train.checkpoint_every < 0) t.fail("checkpoint_every", "must be >= 0 (0 = phase ends only)");
    cfg.train.log_every = t.get_or<int64_t>("log_every", 10);
    if (cfg.train.log_every <= 0) t.fail("log_every", "must be > 0, got " + std::to_string(cfg.train.log_every));
    cfg.train.on_nonfinite = parse_enum(t, "on_nonfinite", OnNonfinite::stop, {OnNonfinite::stop, OnNonfinite::skip_step});
    t.finish();
  }
  {
    YamlReader d(r.node("distributed"), file, "distributed");
    if (d.has("backend")) cfg.distributed.backend = one_of(d, "backend", "gloo", {"gloo", "nccl"});
    if (cfg.distributed.backend == "nccl" && cfg.device == "cpu") {
      d.fail("backend", "nccl needs device: cuda (use gloo on cpu)");
    }
    cfg.distributed.timeout_s = d.get_or<double>("timeout_s", 60);
    if (!(cfg.distributed.timeout_s > 0) || cfg.distributed.timeout_s > 86400) {
      d.fail("timeout_s", "must be in (0, 86400] seconds, got " + std::to_string(cfg.distributed.timeout_s));
    }
    cfg.distributed.bucket_mb = d.get_or<int64_t>("bucket_mb", 25);
    if (cfg.distributed.bucket_mb <= 0) d.fail("bucket_mb", "must be > 0, got " + std::to_string(cfg.distributed.bucket_mb));
    d.finish();
  }
  cfg.output = r.get_or<std::string>("output", "runs/" + cfg.name);
  if (cfg.output.empty()) r.fail("output", "must not be empty");
  r.finish();

  // Relative data paths are taken relative to the working directory (the README runs from the repo root).
  for (auto [key, path] : {std::pair<std::string, std::string>{"data.train", cfg.data.train}, {"data.valid", cfg.data.valid}}) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      throw ConfigError(yaml_where(file, root["data"]), key,
                        "data file '" + path + "' does not exist (run `vcycle prepare` first)");
    }
    if (fs::file_size(path, ec) == 0) throw ConfigError(yaml_where(file, root["data"]), key, "data file '" + path + "' is empty");
  }
  return cfg;
}

RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  RunConfig cfg = load_config_unchecked(path, overrides);
  validate_model_config(cfg, *make_builtin_model(cfg));
  return cfg;
}

RunConfig load_config_unchecked(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(load_yaml_with_overrides(path, overrides), path);
}

std::string config_fingerprint(const RunConfig& cfg, const std::vector<PhaseConfig>& phases) {
  // Enum values are written by their YAML names, so the text (and the fingerprint) stays what it was
  // when RunConfig held them as strings.
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "seed" << YAML::Value << cfg.seed << YAML::Key << "device" << YAML::Value << cfg.device
      << YAML::Key << "precision" << YAML::Value << to_string(cfg.precision);
  out << YAML::Key << "model" << YAML::Value << cfg.model;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginSeq << cfg.data.train << cfg.data.valid << cfg.data.tokenizer
      << cfg.data.batch_size << cfg.data.grad_accum << YAML::EndSeq;
  if (phases.size() > 1) {
    const auto& l = cfg.levels;
    out << YAML::Key << "levels" << YAML::Value << YAML::BeginSeq << l.count << l.width_factor << l.depth_factor
        << to_string(l.width_pairing) << to_string(l.depth_pairing) << l.alpha << to_string(l.interpolation_mode)
        << to_string(l.optimizer_state) << YAML::EndSeq;
  }
  out << YAML::Key << "phases" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : phases) {
    out << YAML::BeginSeq << p.level << p.steps << p.optimizer << p.lr << p.warmup << lr_schedule_name(p.schedule)
        << p.min_lr_ratio << p.batch_size << p.grad_accum << YAML::EndSeq;
  }
  out << YAML::EndSeq;
  if (cfg.optimizers.IsDefined()) out << YAML::Key << "optimizers" << YAML::Value << cfg.optimizers;
  out << YAML::Key << "eval" << YAML::Value << YAML::BeginSeq << cfg.eval.every << cfg.eval.batches << YAML::EndSeq;
  out << YAML::Key << "train" << YAML::Value << YAML::BeginSeq << cfg.train.max_grad_norm
      << to_string(cfg.train.on_nonfinite) << YAML::EndSeq;
  out << YAML::EndMap;
  const std::string text = out.c_str();
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size()));
  std::ostringstream hex;
  hex << std::hex << crc << "-" << text.size();
  return hex.str();
}

}  // namespace vcycle
