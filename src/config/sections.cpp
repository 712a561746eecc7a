// Section parsers shared by the run and fine-tuning config loaders; see sections.h.
#include "sections.h"

#include <cmath>
#include <limits>

#include <torch/cuda.h>

namespace vcycle::sections {

uint64_t parse_seed(YamlReader& r) {
  const int64_t seed = r.get_or<int64_t>("seed", 1234);
  if (seed < 0) r.fail("seed", "must be >= 0, got " + std::to_string(seed));
  return static_cast<uint64_t>(seed);
}

std::string parse_device(YamlReader& r) {
  const std::string device = r.get_or<std::string>("device", "cpu");
  if (!(device == "cpu" || device == "cuda" || device.rfind("cuda:", 0) == 0)) {
    r.fail("device", "unknown device '" + device + "' (valid: cpu, cuda, cuda:N)");
  }
  // Found now rather than when the first tensor moves there.
  if (device != "cpu" && !torch::cuda::is_available()) {
    r.fail("device", "'" + device + "' is not available: this LibTorch was built without CUDA or no GPU is visible (use cpu)");
  }
  return device;
}

int parse_threads(YamlReader& r) {
  const int threads = r.get_or<int>("threads", 0);
  if (threads < 0) r.fail("threads", "must be >= 0 (0 = all cores), got " + std::to_string(threads));
  return threads;
}

namespace {

LrSchedule parse_schedule(YamlReader& r, const std::string& key) {
  const std::string s = r.get_or<std::string>(key, "cosine");
  if (s == "cosine") return LrSchedule::cosine;
  if (s == "constant") return LrSchedule::constant;
  r.fail(key, "unknown schedule '" + s + "' (valid: constant, cosine)");
}

}  // namespace

void parse_phase_training(YamlReader& r, PhaseConfig& p) {
  p.steps = r.get_positive<int64_t>("steps");
  p.optimizer = r.get_or<std::string>("optimizer", "adamw");
  if (!optim::is_optimizer_name(p.optimizer)) {
    r.fail("optimizer", "unknown optimizer '" + p.optimizer + "' (valid: " + optim::optimizer_name_list() + ")");
  }
  p.lr = r.get_or<double>("lr", 1e-3);
  if (!(p.lr > 0)) r.fail("lr", "must be > 0, got " + std::to_string(p.lr));
  // The optimizers compute in float32: a learning rate beyond its range (.inf, 1e308) turns every
  // update into inf/NaN at the phase's first step. Refused here instead.
  if (!std::isfinite(p.lr) || p.lr > static_cast<double>(std::numeric_limits<float>::max())) {
    r.fail("lr", "must be a finite number a float32 can hold (<= 3.4e38), got " + r.node("lr").Scalar());
  }
  p.warmup = r.get_or<int64_t>("warmup", 0);
  if (p.warmup < 0) r.fail("warmup", "must be >= 0, got " + std::to_string(p.warmup));
  p.schedule = parse_schedule(r, "schedule");
  p.min_lr_ratio = r.get_or<double>("min_lr_ratio", 0.1);
  if (p.min_lr_ratio < 0 || p.min_lr_ratio > 1) {
    r.fail("min_lr_ratio", "must be in [0, 1], got " + std::to_string(p.min_lr_ratio));
  }
}

void parse_data_files(YamlReader& d, DataConfig& data) {
  data.train = d.get<std::string>("train");
  data.valid = d.get<std::string>("valid");
  data.batch_size = d.get_or<int64_t>("batch_size", 16);
  if (data.batch_size <= 0) d.fail("batch_size", "must be > 0, got " + std::to_string(data.batch_size));
}

EvalConfig parse_eval(YamlReader& r, int64_t default_batches) {
  YamlReader e(r.node("eval"), r.file(), "eval");
  EvalConfig eval;
  eval.every = e.get_or<int64_t>("every", 100);
  eval.batches = e.get_or<int64_t>("batches", default_batches);
  if (eval.every <= 0) e.fail("every", "must be > 0, got " + std::to_string(eval.every));
  if (eval.batches <= 0) e.fail("batches", "must be > 0, got " + std::to_string(eval.batches));
  e.finish();
  return eval;
}

std::string parse_output(YamlReader& r, const std::string& name) {
  const std::string output = r.get_or<std::string>("output", "runs/" + name);
  if (output.empty()) r.fail("output", "must not be empty");
  return output;
}

}  // namespace vcycle::sections
