// Run-config loading and validation; see include/vcycle/config/run_config.h.
#include "vcycle/config/run_config.h"

#include <zlib.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "sections.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
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

// An `interpolation: { alpha, mode }` map (levels.interpolation or a phase's own).
InterpolationConfig parse_interpolation(const YAML::Node& node, const std::string& file, const std::string& path) {
  YamlReader ip(node, file, path);
  InterpolationConfig c;
  c.alpha = ip.get_or<double>("alpha", 0.5);
  if (!(c.alpha >= 0 && c.alpha <= 1)) ip.fail("alpha", "must be in [0, 1], got " + std::to_string(c.alpha));
  c.mode = sections::parse_enum(ip, "mode", InterpolationMode::fixed, {InterpolationMode::fixed, InterpolationMode::norm_matched});
  ip.finish();
  return c;
}

PhaseConfig parse_phase(const YAML::Node& node, const std::string& file, const std::string& path, bool has_level) {
  YamlReader r(node, file, path);
  if (!node.IsDefined() || node.IsNull()) throw ConfigError(file, path, "missing (expected a map)");
  PhaseConfig p;
  if (has_level) {
    p.level = r.get<int>("level");
    if (p.level < 1) r.fail("level", "must be >= 1, got " + std::to_string(p.level));
  }
  sections::parse_phase_training(r, p);
  p.batch_size = r.get_or<int64_t>("batch_size", 0);
  if (p.batch_size < 0) r.fail("batch_size", "must be > 0 (or 0 for data.batch_size), got " + std::to_string(p.batch_size));
  p.grad_accum = r.get_or<int64_t>("grad_accum", 0);
  if (p.grad_accum < 0) r.fail("grad_accum", "must be > 0 (or 0 for data.grad_accum), got " + std::to_string(p.grad_accum));
  if (has_level && r.has("interpolation")) p.interpolation = parse_interpolation(r.node("interpolation"), file, path + ".interpolation");
  r.finish();
  return p;
}

// The phases walk the levels one step at a time and end at level 1 (the full model), visiting every
// level up to levels.count: a V (1 -> ... -> K -> ... -> 1), growth (K -> ... -> 1, from a fresh
// small model), repeated cycles (1 -> 2 -> 1 -> 2 -> 1) or any mix. An up-step to a level that was
// never coalesced from has no θ_pre to blend with: it de-coalesces only, so an explicit alpha < 1
// there is an error.
void check_level_walk(const std::vector<PhaseConfig>& phases, int count, const std::string& file, const YAML::Node& node) {
  auto where = [&](size_t i) { return yaml_where(file, node[i]); };
  auto key = [](size_t i, const std::string& k) { return "phases[" + std::to_string(i) + "]." + k; };
  std::string walk;
  for (const auto& p : phases) walk += (walk.empty() ? "" : " -> ") + std::to_string(p.level);
  std::vector<bool> has_pre(static_cast<size_t>(count) + 2, false);  // θ_pre(level) saved by a coalescing
  int deepest = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const PhaseConfig& p = phases[i];
    if (p.level > count) {
      throw ConfigError(where(i), key(i, "level"),
                        "level " + std::to_string(p.level) + " is beyond levels.count = " + std::to_string(count) + " (walk " + walk + ")");
    }
    deepest = std::max(deepest, p.level);
    const bool up = i > 0 && p.level == phases[i - 1].level - 1;
    if (i > 0 && p.level != phases[i - 1].level + 1 && !up) {
      throw ConfigError(where(i), key(i, "level"),
                        "the walk must move one level at a time, but level " + std::to_string(p.level) + " follows level " +
                            std::to_string(phases[i - 1].level) + " (walk " + walk + ")");
    }
    if (p.interpolation && !up) {
      throw ConfigError(where(i), key(i, "interpolation"),
                        "only a phase entered by an up-step (de-coalescing) interpolates; this phase " +
                            std::string(i == 0 ? "starts the run" : "is entered by coalescing"));
    }
    if (i > 0 && !up) has_pre[static_cast<size_t>(phases[i - 1].level)] = true;
    if (up) {
      if (!has_pre[static_cast<size_t>(p.level)] && p.interpolation && p.interpolation->alpha < 1) {
        throw ConfigError(where(i), key(i, "interpolation.alpha"),
                          "level " + std::to_string(p.level) + " was never coalesced from before this up-step, so there is " +
                              "no θ_pre to blend with: it de-coalesces only (alpha 1); remove interpolation or set alpha: 1");
      }
      has_pre[static_cast<size_t>(p.level)] = false;  // the next up-step to this level needs a new coalescing
    }
  }
  if (phases.back().level != 1) {
    throw ConfigError(where(phases.size() - 1), key(phases.size() - 1, "level"),
                      "the walk must end at level 1 (the full model), but ends at level " + std::to_string(phases.back().level) +
                          " (walk " + walk + ")");
  }
  if (deepest < count) {
    throw ConfigError(yaml_where(file, node), "phases",
                      "levels.count = " + std::to_string(count) + " but no phase reaches level " + std::to_string(count) +
                          " (walk " + walk + ")");
  }
}

void parse_model(YamlReader& r, RunConfig& cfg) {
  cfg.model = r.node("model");
  if (!cfg.model.IsDefined() || !cfg.model.IsMap()) r.fail("model", "missing or not a map (e.g. { type: gpt, layers: 4, ... })");
  YAML::Node type = cfg.model["type"];
  cfg.model_type = type.IsDefined() ? yaml_as<std::string>(type, r.file(), "model.type") : "gpt";
}

DataConfig parse_data(YamlReader& r) {
  YamlReader d(r.node("data"), r.file(), "data");
  if (!r.has("data")) r.fail("data", "missing (expected { train: ..., valid: ... })");
  DataConfig data;
  sections::parse_data_files(d, data);
  data.tokenizer = d.get_or<std::string>("tokenizer", "byte");
  data.grad_accum = d.get_or<int64_t>("grad_accum", 1);
  if (data.grad_accum <= 0) d.fail("grad_accum", "must be > 0, got " + std::to_string(data.grad_accum));
  d.finish();
  return data;
}

// levels.pairing and levels.interpolation.
void parse_level_moves(YamlReader& l, LevelsConfig& levels) {
  YamlReader p(l.node("pairing"), l.file(), "levels.pairing");
  levels.width_pairing = sections::parse_enum(p, "width", Pairing::halves, {Pairing::halves, Pairing::neighbors});
  levels.depth_pairing = sections::parse_enum(p, "depth", Pairing::halves, {Pairing::halves, Pairing::neighbors});
  p.finish();
  levels.interpolation = parse_interpolation(l.node("interpolation"), l.file(), "levels.interpolation");
}

LevelsConfig parse_levels(YamlReader& r) {
  YamlReader l(r.node("levels"), r.file(), "levels");
  LevelsConfig levels;
  levels.count = l.get_or<int>("count", 1);
  if (levels.count < 1) l.fail("count", "must be >= 1, got " + std::to_string(levels.count));
  levels.width_factor = l.get_or<int64_t>("width_factor", 2);
  levels.depth_factor = l.get_or<int64_t>("depth_factor", 2);
  if (levels.width_factor < 1) l.fail("width_factor", "must be >= 1, got " + std::to_string(levels.width_factor));
  if (levels.depth_factor < 1) l.fail("depth_factor", "must be >= 1, got " + std::to_string(levels.depth_factor));
  if (levels.count > 1 && levels.width_factor == 1 && levels.depth_factor == 1) {
    l.fail("width_factor", "width_factor and depth_factor are both 1: the levels would not shrink");
  }
  parse_level_moves(l, levels);
  levels.optimizer_state = sections::parse_enum(l, "optimizer_state", OptimizerStateMode::reset,
                                      {OptimizerStateMode::reset, OptimizerStateMode::project});
  l.finish();
  return levels;
}

// phases (the V-cycle) and baseline; at least one of them.
void parse_phases(YamlReader& r, RunConfig& cfg) {
  YAML::Node phases = r.node("phases");
  if (!phases.IsDefined() || phases.IsNull()) {
    if (cfg.levels.count > 1) r.fail("phases", "missing: a V-cycle with levels.count > 1 needs its phases");
  } else {
    if (!phases.IsSequence()) r.fail("phases", "expected a list of phases, got " + yaml_describe(phases));
    for (size_t i = 0; i < phases.size(); ++i) {
      cfg.phases.push_back(parse_phase(phases[i], r.file(), "phases[" + std::to_string(i) + "]", true));
    }
    if (cfg.phases.empty()) r.fail("phases", "is empty: list the phases, or remove the key for a baseline-only config");
    check_level_walk(cfg.phases, cfg.levels.count, r.file(), phases);
  }
  if (r.has("baseline")) cfg.baseline = parse_phase(r.node("baseline"), r.file(), "baseline", false);
  if (cfg.phases.empty() && !cfg.baseline) r.fail("baseline", "the config has neither phases nor a baseline: nothing to train");
}

TrainConfig parse_train(YamlReader& r) {
  YamlReader t(r.node("train"), r.file(), "train");
  TrainConfig train;
  train.max_grad_norm = t.get_or<double>("max_grad_norm", 1.0);
  if (train.max_grad_norm < 0) t.fail("max_grad_norm", "must be >= 0 (0 disables clipping), got " + std::to_string(train.max_grad_norm));
  train.checkpoint_every = t.get_or<int64_t>("checkpoint_every", 200);
  if (train.checkpoint_every < 0) t.fail("checkpoint_every", "must be >= 0 (0 = phase ends only)");
  train.keep_checkpoints = t.get_or<int>("keep_checkpoints", 0);
  if (train.keep_checkpoints < 0) t.fail("keep_checkpoints", "must be >= 0 (0 keeps only the latest), got " + std::to_string(train.keep_checkpoints));
  train.log_every = t.get_or<int64_t>("log_every", 10);
  if (train.log_every <= 0) t.fail("log_every", "must be > 0, got " + std::to_string(train.log_every));
  train.on_nonfinite = sections::parse_enum(t, "on_nonfinite", OnNonfinite::stop, {OnNonfinite::stop, OnNonfinite::skip_step});
  // Not in the fingerprint: a different peak changes what MFU is reported, not what is trained.
  if (t.has("peak_flops")) train.peak_flops = t.get_positive<double>("peak_flops");
  t.finish();
  return train;
}

DistributedConfig parse_distributed(YamlReader& r, const std::string& device) {
  YamlReader d(r.node("distributed"), r.file(), "distributed");
  DistributedConfig dist;
  if (d.has("backend")) {
    dist.backend = d.get<std::string>("backend");
    if (dist.backend != "gloo" && dist.backend != "nccl") {
      d.fail("backend", "unknown value '" + dist.backend + "' (valid: gloo, nccl)");
    }
  }
  if (dist.backend == "nccl" && device == "cpu") d.fail("backend", "nccl needs device: cuda (use gloo on cpu)");
  dist.timeout_s = d.get_or<double>("timeout_s", 60);
  if (!(dist.timeout_s > 0) || dist.timeout_s > 86400) {
    d.fail("timeout_s", "must be in (0, 86400] seconds, got " + std::to_string(dist.timeout_s));
  }
  dist.bucket_mb = d.get_or<int64_t>("bucket_mb", 25);
  if (dist.bucket_mb <= 0) d.fail("bucket_mb", "must be > 0, got " + std::to_string(dist.bucket_mb));
  d.finish();
  return dist;
}

// Relative data paths are taken relative to the working directory (the README runs from the repo root).
void check_data_files(const RunConfig& cfg, const YAML::Node& root) {
  for (auto [key, path] : {std::pair<std::string, std::string>{"data.train", cfg.data.train}, {"data.valid", cfg.data.valid}}) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      const std::string kind = file_kind(path);
      throw ConfigError(yaml_where(cfg.file, root["data"]), key,
                        "data file '" + path + "' " +
                            (kind == "missing" ? "does not exist (run `vcycle prepare` first)" : "is " + kind + ", not a regular file"));
    }
    if (fs::file_size(path, ec) == 0) throw ConfigError(yaml_where(cfg.file, root["data"]), key, "data file '" + path + "' is empty");
  }
}

}  // namespace

// ---------------------------------------------------------------------------- load
RunConfig parse_config(const YAML::Node& root, const std::string& file) {
  if (!root.IsMap()) throw ConfigError(file, "", "expected a YAML map at the top level, got " + yaml_describe(root));
  YamlReader r(root, file, "");
  RunConfig cfg;
  cfg.file = file;
  sections::parse_identity(r, cfg);
  const std::string precision = r.get_or<std::string>("precision", "auto");
  try {
    cfg.precision = resolve_precision(precision, cfg.device == "cpu");
  } catch (const std::invalid_argument& e) {
    r.fail("precision", e.what());
  }
  cfg.precision_auto = precision == "auto";
  parse_model(r, cfg);
  cfg.data = parse_data(r);
  cfg.levels = parse_levels(r);
  parse_phases(r, cfg);
  sections::parse_optimizers(r, cfg);
  cfg.eval = sections::parse_eval(r, 20);
  cfg.train = parse_train(r);
  cfg.distributed = parse_distributed(r, cfg.device);
  cfg.output = sections::parse_output(r, cfg.name);
  cfg.init = r.get_or<std::string>("init", "");
  if (!cfg.init.empty() && !fs::is_regular_file(cfg.init)) {
    throw ConfigError(yaml_where(file, root["init"]), "init", "checkpoint '" + cfg.init + "' does not exist");
  }
  if (!cfg.init.empty() && !cfg.phases.empty() && cfg.phases.front().level != 1) {
    throw ConfigError(yaml_where(file, root["init"]), "init",
                      "holds level-1 weights, but the phases start at level " + std::to_string(cfg.phases.front().level) +
                          " (a growth walk starts from a fresh small model)");
  }
  r.finish();
  check_data_files(cfg, root);
  return cfg;
}

RunConfig load_config_unchecked(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_config(load_yaml_with_overrides(path, overrides), path);
}

std::string config_fingerprint(const RunConfig& cfg, const std::vector<PhaseConfig>& phases) {
  // Enum values are written by their YAML names, so the text (and the fingerprint) stays what it was
  // when RunConfig held them as strings. `precision: auto` is written as fp32, what a config without
  // the key wrote before auto became the default, so that those runs still resume; what auto picks
  // depends on the machine, and like `threads` it is not part of a run's identity.
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "seed" << YAML::Value << cfg.seed << YAML::Key << "device" << YAML::Value << cfg.device
      << YAML::Key << "precision" << YAML::Value << (cfg.precision_auto ? "fp32" : to_string(cfg.precision));
  out << YAML::Key << "model" << YAML::Value << cfg.model;
  out << YAML::Key << "data" << YAML::Value << YAML::BeginSeq << cfg.data.train << cfg.data.valid << cfg.data.tokenizer
      << cfg.data.batch_size << cfg.data.grad_accum << YAML::EndSeq;
  if (phases.size() > 1) {
    const auto& l = cfg.levels;
    out << YAML::Key << "levels" << YAML::Value << YAML::BeginSeq << l.count << l.width_factor << l.depth_factor
        << to_string(l.width_pairing) << to_string(l.depth_pairing) << l.interpolation.alpha << to_string(l.interpolation.mode)
        << to_string(l.optimizer_state) << YAML::EndSeq;
  }
  out << YAML::Key << "phases" << YAML::Value << YAML::BeginSeq;
  for (const auto& p : phases) {
    out << YAML::BeginSeq << p.level << p.steps << p.optimizer << p.lr << p.warmup << lr_schedule_name(p.schedule)
        << p.min_lr_ratio << p.batch_size << p.grad_accum;
    // Only when set, so that the fingerprints of runs without it stay what they were.
    if (p.interpolation) out << p.interpolation->alpha << to_string(p.interpolation->mode);
    out << YAML::EndSeq;
  }
  out << YAML::EndSeq;
  if (cfg.optimizers.IsDefined()) out << YAML::Key << "optimizers" << YAML::Value << cfg.optimizers;
  out << YAML::Key << "eval" << YAML::Value << YAML::BeginSeq << cfg.eval.every << cfg.eval.batches << YAML::EndSeq;
  out << YAML::Key << "train" << YAML::Value << YAML::BeginSeq << cfg.train.max_grad_norm
      << to_string(cfg.train.on_nonfinite) << YAML::EndSeq;
  if (!cfg.init.empty()) out << YAML::Key << "init" << YAML::Value << cfg.init;  // absent: fingerprints as before
  out << YAML::EndMap;
  const std::string text = out.c_str();
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size()));
  std::ostringstream hex;
  hex << std::hex << crc << "-" << text.size();
  return hex.str();
}

}  // namespace vcycle
