// The run checkpoint's content; see include/vcycle/schedules/run_checkpoint.h.
#include "vcycle/schedules/run_checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"

namespace vcycle {

using json = nlohmann::json;

namespace {

constexpr const char* kModelPrefix = "model/";
constexpr const char* kOptimizerBlob = "optimizer";
constexpr const char* kRngBlob = "rng";

std::string pre_prefix(int level) { return "pre" + std::to_string(level) + "/"; }

// The level of a "pre<l>/<name>" key and the length of its prefix; nullopt for other keys.
std::optional<std::pair<int, size_t>> pre_key(const std::string& key) {
  if (key.rfind("pre", 0) != 0) return std::nullopt;
  size_t end = 3;
  while (end < key.size() && end < 12 && key[end] >= '0' && key[end] <= '9') ++end;
  if (end == 3 || end >= key.size() || key[end] != '/') return std::nullopt;
  return std::make_pair(std::stoi(key.substr(3, end - 3)), end + 1);
}

std::optional<std::string> blob(const Checkpoint& ckpt, const char* name) {
  const auto it = ckpt.blobs.find(name);
  if (it == ckpt.blobs.end()) return std::nullopt;
  return it->second;
}

}  // namespace

// The field names are the on-disk format: keep them (and keep reading old ones) when adding fields.
void to_json(json& j, const RunState& s) {
  j = json{{"phase", s.phase},           {"step", s.step},
           {"entered", s.entered},       {"model_level", s.model_level},
           {"global_step", s.global_step}, {"tokens", s.tokens},
           {"train_flops", s.train_flops}, {"op_flops", s.op_flops},
           {"eval_flops", s.eval_flops}, {"train_wall", s.train_wall},
           {"eval_wall", s.eval_wall},   {"loss_sum", s.loss_sum},
           {"loss_count", s.loss_count}, {"skipped_steps", s.skipped_steps},
           {"last_val_loss", std::isnan(s.last_val_loss) ? json(nullptr) : json(s.last_val_loss)},
           {"last_eval_step", s.last_eval_step},
           {"phase_tokens0", s.phase_tokens0}, {"phase_flops0", s.phase_flops0},
           {"phase_wall0", s.phase_wall0},   {"metrics_offset", s.metrics_offset},
           {"done", s.done},             {"fingerprint", s.fingerprint}};
  if (!s.data_files.empty()) j["data_files"] = s.data_files;
}

void from_json(const json& j, RunState& s) {
  j.at("phase").get_to(s.phase);
  j.at("step").get_to(s.step);
  j.at("entered").get_to(s.entered);
  j.at("model_level").get_to(s.model_level);
  j.at("global_step").get_to(s.global_step);
  j.at("tokens").get_to(s.tokens);
  j.at("train_flops").get_to(s.train_flops);
  j.at("op_flops").get_to(s.op_flops);
  j.at("eval_flops").get_to(s.eval_flops);
  j.at("train_wall").get_to(s.train_wall);
  j.at("eval_wall").get_to(s.eval_wall);
  j.at("loss_sum").get_to(s.loss_sum);
  j.at("loss_count").get_to(s.loss_count);
  j.at("skipped_steps").get_to(s.skipped_steps);
  s.last_val_loss = j.at("last_val_loss").is_null() ? std::numeric_limits<double>::quiet_NaN()
                                                    : j.at("last_val_loss").get<double>();
  j.at("last_eval_step").get_to(s.last_eval_step);
  j.at("phase_tokens0").get_to(s.phase_tokens0);
  j.at("phase_flops0").get_to(s.phase_flops0);
  j.at("phase_wall0").get_to(s.phase_wall0);
  j.at("metrics_offset").get_to(s.metrics_offset);
  j.at("done").get_to(s.done);
  j.at("fingerprint").get_to(s.fingerprint);
  if (j.contains("data_files")) j.at("data_files").get_to(s.data_files);  // absent before data fingerprints
}

Checkpoint to_checkpoint(const RunCheckpoint& run) {
  Checkpoint ckpt;
  for (const auto& [name, t] : run.model) ckpt.tensors[kModelPrefix + name] = t;
  for (const auto& [level, tensors] : run.theta_pre) {
    for (const auto& [name, t] : tensors) ckpt.tensors[pre_prefix(level) + name] = t;
  }
  if (run.optimizer) ckpt.blobs[kOptimizerBlob] = *run.optimizer;
  if (run.rng) ckpt.blobs[kRngBlob] = *run.rng;
  ckpt.meta_json = json(run.state).dump();
  return ckpt;
}

RunCheckpoint run_checkpoint_from(const Checkpoint& ckpt, const std::string& what) {
  RunCheckpoint run;
  try {
    from_json(json::parse(ckpt.meta_json), run.state);
  } catch (const json::exception& e) {
    throw InputError(what + ": checkpoint metadata is malformed (" + e.what() + ")");
  }
  run.model = checkpoint_model(ckpt);
  for (const auto& [key, t] : ckpt.tensors) {
    if (const auto pre = pre_key(key)) run.theta_pre[pre->first][key.substr(pre->second)] = t;
  }
  run.optimizer = blob(ckpt, kOptimizerBlob);
  run.rng = blob(ckpt, kRngBlob);
  return run;
}

void check_run_position(const RunState& s, const std::vector<PhaseConfig>& phases, int level_count,
                        const std::string& what) {
  const auto bad = [&](const char* field, const std::string& value, const std::string& why) {
    throw InputError(what + ": checkpoint field '" + field + "' is " + value + ", " + why +
                     " (the checkpoint does not belong to this run's phases, or was edited)");
  };
  const int n = static_cast<int>(phases.size());
  if (s.phase < 0 || s.phase > n) {
    bad("phase", std::to_string(s.phase), "but the run has phases 0 .. " + std::to_string(n - 1) +
                                              " (or " + std::to_string(n) + " when finished)");
  }
  const int64_t steps = s.phase < n ? phases[static_cast<size_t>(s.phase)].steps : 0;
  if (s.step < 0 || s.step > steps) {
    bad("step", std::to_string(s.step), "but phase " + std::to_string(s.phase) + " has 0 .. " + std::to_string(steps) + " steps");
  }
  if (s.model_level < 1 || s.model_level > level_count) {
    bad("model_level", std::to_string(s.model_level), "but the run has levels 1 .. " + std::to_string(level_count));
  }
  // The model is at the level of the phase it is in, or, between phases, of the phase before.
  int expected = phases.empty() ? 1 : phases.front().level;  // a growth walk starts below level 1
  if (s.entered && s.phase < n) expected = phases[static_cast<size_t>(s.phase)].level;
  else if (!s.entered && s.phase > 0) expected = phases[static_cast<size_t>(s.phase - 1)].level;
  if (s.entered && s.phase == n) bad("entered", "true", "but phase " + std::to_string(n) + " is past the last phase");
  if (s.model_level != expected) {
    bad("model_level", std::to_string(s.model_level), "but phase " + std::to_string(s.phase) + (s.entered ? "" : " (not yet entered)") +
                                                          " runs at level " + std::to_string(expected));
  }
  if (s.done && s.phase != n) bad("done", "true", "but phase " + std::to_string(s.phase) + " of " + std::to_string(n) + " is not finished");
  if (s.global_step < s.step) bad("global_step", std::to_string(s.global_step), "less than the phase's step " + std::to_string(s.step));
  for (const auto& [field, v] : {std::pair<const char*, double>{"tokens", s.tokens}, {"train_flops", s.train_flops},
                                 {"op_flops", s.op_flops}, {"eval_flops", s.eval_flops}}) {
    if (!(v >= 0) || !std::isfinite(v)) bad(field, std::to_string(v), "but must be a finite count >= 0");
  }
}

void save_run_checkpoint(const std::string& path, const RunCheckpoint& run) { save_checkpoint(path, to_checkpoint(run)); }

RunCheckpoint load_run_checkpoint(const std::string& path) { return run_checkpoint_from(load_checkpoint(path), path); }

bool run_checkpoint_finished(const std::string& path, const std::string& fingerprint) {
  if (!std::filesystem::exists(path)) return false;
  // Only the two fields asked about are read, so that any readable run checkpoint answers.
  try {
    const json meta = json::parse(load_checkpoint(path).meta_json);
    return meta.at("done").get<bool>() && meta.at("fingerprint").get<std::string>() == fingerprint;
  } catch (const std::exception&) {
    return false;
  }
}

std::string cpu_rng_state() {
  const auto state = at::detail::getDefaultCPUGenerator().get_state();
  return std::string(static_cast<const char*>(state.data_ptr()), state.numel());
}

void set_cpu_rng_state(const std::string& bytes) {
  auto state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(state.data_ptr(), bytes.data(), bytes.size());
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

TensorMap checkpoint_model(const Checkpoint& ckpt) {
  const std::string prefix = kModelPrefix;
  TensorMap out;
  for (const auto& [name, t] : ckpt.tensors) {
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = t;
  }
  return out;
}

int checkpoint_model_level(const Checkpoint& ckpt, const std::string& what) {
  try {
    const json meta = json::parse(ckpt.meta_json);
    return meta.contains("model_level") ? meta.at("model_level").get<int>() : 1;
  } catch (const json::exception& e) {
    throw InputError(what + ": checkpoint metadata is malformed (" + e.what() + ")");
  }
}

void save_model_checkpoint(const std::string& path, const TensorMap& model, int level) {
  Checkpoint ckpt;
  ckpt.meta_json = json{{"level", level}}.dump();
  for (const auto& [name, t] : model) ckpt.tensors[kModelPrefix + name] = t;
  save_checkpoint(path, ckpt);
}

}  // namespace vcycle
