// The cycle runner: walks the phases of a run through the levels, trains, applies the operators
// at level changes, evaluates, logs and checkpoints. See include/vcycle/schedules/cycle_runner.h.
//
// Read top to bottom: CycleRunner::run (the phase loop) → start / restore → enter_phase (level
// transitions) → train_step → evaluate → checkpoint. The checkpoint's content is run_checkpoint.h's;
// the step and the evaluation are shared with fine-tuning (train_step.h, evaluate.h).
#include "vcycle/schedules/cycle_runner.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vcycle/config/token_meta.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/distributed.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_fingerprint.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/metrics.h"
#include "vcycle/core/peak_flops.h"
#include "vcycle/core/precision.h"
#include "vcycle/core/run_lock.h"
#include "vcycle/core/stop_signal.h"
#include "vcycle/operators/state_projection.h"
#include "vcycle/optim/registry.h"
#include "vcycle/schedules/checkpoint_retention.h"
#include "vcycle/schedules/evaluate.h"
#include "vcycle/schedules/level_plan.h"
#include "vcycle/schedules/lr_schedule.h"
#include "vcycle/schedules/run_checkpoint.h"
#include "vcycle/schedules/train_step.h"

namespace vcycle {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kMetricsName = "metrics.jsonl";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t param_count(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

std::string human_count(double x) {
  const char* units[] = {"", "k", "M", "G", "T", "P", "E"};
  int u = 0;
  while (std::abs(x) >= 1000 && u < 6) {
    x /= 1000;
    ++u;
  }
  return fmt::format("{:.3g}{}", x, units[u]);
}

std::string human_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// ---------------------------------------------------------------------------- the runner
class CycleRunner {
 public:
  CycleRunner(const RunConfig& cfg, const ModelAdapter& adapter, const std::vector<PhaseConfig>& phases, std::string dir,
              const CycleOptions& options)
      : cfg_(cfg), adapter_(adapter), phases_(phases), dir_(std::move(dir)), options_(options),
        dist_(options.dist != nullptr ? *options.dist : single_process_),
        device_(dist_.device_for(cfg.device)), precision_(cfg.precision),
        levels_(level_plan(cfg, adapter, phases)) {
    if (!dist_.is_main()) options_.quiet = true;  // rank 0 speaks for the run
  }

  CycleResult run() {
    start();
    // MFU's denominator, fixed for the run; without one the rows and lines carry FLOP/s alone.
    std::string note;
    peak_ = resolve_peak(cfg_.train.peak_flops, device_.type() == torch::kCPU, precision_ == Precision::bf16, &note);
    if (!peak_) log(note);
    if (cfg_.precision_auto) {  // machine-dependent, so a resume on another machine may differ: say it
      log(precision_ == Precision::bf16 ? "precision bf16 (auto: this CPU has native bf16; precision: fp32 turns it off)"
                                        : "precision fp32 (auto: bf16 only on a CPU with native bf16)");
    }
    for (; state_.phase < static_cast<int>(phases_.size()); ++state_.phase) {
      if (!state_.entered) {
        stop_if_asked();
        enter_phase();
      }
      const PhaseConfig& phase = phases_[state_.phase];
      while (state_.step < phase.steps) {
        stop_if_asked();
        train_step(phase);
        const bool phase_end = state_.step == phase.steps;
        if (state_.step % cfg_.eval.every == 0 || phase_end) evaluate();
        if (!phase_end && cfg_.train.checkpoint_every > 0 && state_.step % cfg_.train.checkpoint_every == 0) checkpoint();
      }
      finish_phase();
    }
    state_.done = true;
    checkpoint();
    return CycleResult{dir_, state_.last_val_loss, resumed_};
  }

 private:
  // -------------------------------------------------------------------------- start / resume
  // Only rank 0 looks at the output directory: it decides between a fresh start and a resume and
  // sends the checkpoint's bytes to the other ranks, so all ranks resume from the same one (and
  // the output directory need not be shared between machines).
  void start() {
    const std::string ckpt_path = (fs::path(dir_) / kRunCheckpointFile).string();
    const std::string fingerprint = config_fingerprint(cfg_, phases_);
    check_batch_split();
    check_activation_memory();
    check_phase_optimizers();
    enum : int64_t { kFresh = 0, kResume = 1, kRefused = 2 };
    int64_t decision = kFresh;
    std::string ckpt_bytes;
    std::optional<ChosenCheckpoint> chosen;
    if (dist_.is_main()) {
      try {
        std::error_code ec;
        // One writer per directory: the lock comes before anything in it is looked at. A directory
        // that does not exist yet is made (and locked) only once the data are known to be good.
        if (fs::exists(dir_, ec)) lock_run_directory(dir_);
        const bool holds_run = holds_a_run();
        if (holds_run && !options_.resume && !options_.restart) {
          throw InputError(dir_ + " already holds a run; pass --resume to continue it, or --restart to start it over "
                                  "from step 0 (replacing its checkpoints and metrics)");
        }
        batches_ = adapter_.batches(cfg_);  // validates the data files before anything is written
        if (adapter_.reads_token_files()) bytes_per_token_ = bytes_per_token(cfg_.data.tokenizer, cfg_.data.valid);
        if (options_.resume && !options_.restart) {
          chosen = choose_checkpoint(ckpt_path, fingerprint);
          if (chosen) {
            ckpt_bytes = chosen->bytes;
            decision = kResume;
          }
        }
        lock_run_directory(dir_);  // creates the directory; a no-op when it is held already
        remove_stale_temp_files();
        if (decision == kFresh) remove_run_files();
      } catch (...) {
        dist_.broadcast_int(kRefused, "the start decision");
        throw;
      }
    }
    decision = dist_.broadcast_int(decision, "the start decision");
    if (decision == kRefused) {
      throw InputError(fmt::format("rank {}: rank 0 could not start the run in {} (its message says why)", dist_.rank(), dir_));
    }
    if (!dist_.is_main()) batches_ = adapter_.batches(cfg_);
    if (decision == kResume) {
      ckpt_bytes = dist_.broadcast_bytes(ckpt_bytes, "the checkpoint");
      const std::string from = chosen ? chosen->path : ckpt_path;
      restore(run_checkpoint_from(checkpoint_from_bytes(ckpt_bytes, from), from), from, fingerprint);
      if (chosen && !chosen->fallback_reason.empty()) note_fallback(*chosen, ckpt_path);
      dist_.check_same(state_.global_step, "the resumed global step");
      return;
    }
    state_.fingerprint = fingerprint;
    state_.data_files = data_fingerprints();
    if (dist_.is_main()) metrics_ = std::make_unique<MetricsWriter>((fs::path(dir_) / kMetricsName).string(), 0);
    torch::manual_seed(cfg_.seed);
    // A growth schedule starts at a smaller level, from a fresh initialisation of that shape.
    state_.model_level = phases_.front().level;
    module_ = adapter_.build(levels_.shape(state_.model_level));
    // init: level-1 weights (the config loader refuses it for a walk that starts lower).
    if (!cfg_.init.empty() && state_.model_level == 1) {
      load_module_tensors(*module_, checkpoint_model(load_checkpoint(cfg_.init)), cfg_.init);
    }
    module_->to(device_);
    sync_module("the initial parameters");
    evaluate();  // the curve starts at the initial loss
  }

  // ---- the files of a run directory (rank 0, under the directory's lock)
  std::string run_file(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  bool holds_a_run() const {
    std::error_code ec;
    for (const std::string& name : {std::string(kRunCheckpointFile), std::string(kRunCheckpointFile) + ".prev", std::string(kMetricsName)}) {
      if (fs::exists(fs::symlink_status(run_file(name), ec))) return true;
    }
    return false;
  }

  // A fresh start (or --restart) replaces what a previous run left.
  void remove_run_files() const {
    std::error_code ec;
    for (const std::string& name : {std::string(kRunCheckpointFile), std::string(kRunCheckpointFile) + ".prev",
                                    std::string(kRunCheckpointFile) + ".bad", std::string(kMetricsName)}) {
      const std::string path = run_file(name);
      if (!fs::exists(fs::symlink_status(path, ec))) continue;
      require_replaceable(path);
      fs::remove(path, ec);
      if (ec) throw RunError(path + ": cannot remove (" + ec.message() + ")");
    }
  }

  // Temp files of writers that died mid-write (the lock says none is writing now).
  void remove_stale_temp_files() const {
    std::error_code ec;
    const std::string prefix = std::string(kRunCheckpointFile) + ".tmp.";
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && entry.is_regular_file(ec)) fs::remove(entry.path(), ec);
    }
  }

  struct ChosenCheckpoint {
    std::string path, bytes;
    std::string fallback_reason;  // why the newest checkpoint was not taken; empty when it was
  };

  // The newest checkpoint that passes its checks (format, checksum, run position), else the one
  // before it; nullopt when there is none (a fresh start). Both bad: InputError naming both.
  std::optional<ChosenCheckpoint> choose_checkpoint(const std::string& newest, const std::string& fingerprint) const {
    std::string reason;
    std::error_code ec;
    for (const std::string& path : {newest, newest + ".prev"}) {
      if (!fs::exists(fs::symlink_status(path, ec))) {
        if (reason.empty()) reason = path + ": missing";
        continue;
      }
      try {
        std::string bytes = read_checkpoint_file(path);
        const RunCheckpoint run = run_checkpoint_from(checkpoint_from_bytes(bytes, path), path);
        check_run_position(run.state, phases_, levels_.count(), path);
        (void)fingerprint;  // a changed config is not a damaged file: restore() refuses it without falling back
        return ChosenCheckpoint{path, std::move(bytes), path == newest ? std::string() : reason};
      } catch (const InputError& e) {
        if (path != newest) throw InputError(reason + "; and the previous checkpoint " + e.what());
        reason = e.what();
      }
    }
    if (reason != newest + ": missing") throw InputError(reason + " (and there is no " + kRunCheckpointFile + ".prev to fall back to)");
    return std::nullopt;
  }

  static std::string read_checkpoint_file(const std::string& path) {
    require_readable_file(path, "checkpoint");
    return read_file(path);
  }

  // Resumed from the previous checkpoint: say so, keep the bad newest one aside (so that the next
  // save does not make it the "previous" one), and record it in the metrics.
  void note_fallback(const ChosenCheckpoint& chosen, const std::string& newest) {
    if (!dist_.is_main()) return;
    std::error_code ec;
    if (fs::exists(fs::symlink_status(newest, ec))) {
      fs::rename(newest, newest + ".bad", ec);
      if (ec) throw RunError(newest + ": cannot move the damaged checkpoint aside (" + ec.message() + ")");
    }
    warn(fmt::format("resuming from {}: {}", chosen.path, chosen.fallback_reason));
    emit(json{{"type", "resume"}, {"file", chosen.path}, {"reason", chosen.fallback_reason},
              {"phase", state_.phase}, {"step", state_.step}, {"global_step", state_.global_step}});
  }

  // data path -> file_fingerprint of the files this run trains and evaluates on.
  std::map<std::string, std::string> data_fingerprints() const {
    std::map<std::string, std::string> out;
    for (const auto& path : {cfg_.data.train, cfg_.data.valid}) out[path] = file_fingerprint(path);
    return out;
  }

  // A resumed run trains on the data it started with, unless told otherwise.
  void check_data_unchanged(const std::string& path) {
    const auto now = data_fingerprints();
    for (const auto& [file, was] : state_.data_files) {
      const auto it = now.find(file);
      const std::string is = it == now.end() ? std::string("not in the config") : it->second;
      if (is == was) continue;
      const std::string msg = fmt::format("{}: data file changed since this run started ({} then, {} now; checkpoint {})",
                                          file, was, is, path);
      if (!options_.allow_data_change) throw InputError(msg + "; restore it, or pass --allow-data-change to continue on it");
      warn(msg + "; continuing on it (--allow-data-change)");
    }
    state_.data_files = now;
  }

  // Between two steps: a stop signal (stop_signal.h) ends the run here, with a checkpoint. Rank 0's
  // signal decides for all ranks, so that they stop at the same step.
  void stop_if_asked() {
    int sig = stop_requested();
    if (dist_.distributed()) sig = static_cast<int>(dist_.broadcast_int(sig, "the stop request"));
    if (sig == 0) return;
    checkpoint();
    throw StopRequested(fmt::format("{}: stopped at phase {} step {}; continue with --resume", dir_, state_.phase + 1,
                                    state_.step),
                        sig);
  }

  // Every phase's optimizer, built once on its level's parameters before anything is written: an
  // option that only the parameters can refute (a no_decay pattern matching no name at that level)
  // is found now, not when its phase starts hours into the run.
  // Only optimizers with no_decay patterns need it (their other options are checked at load).
  void check_phase_optimizers() const {
    std::map<int, std::shared_ptr<torch::nn::Module>> built;
    for (const PhaseConfig& phase : phases_) {
      if (cfg_.optimizer_configs.get(phase.optimizer).no_decay.empty()) continue;
      auto& module = built[phase.level];
      if (!module) module = adapter_.build(levels_.shape(phase.level));
      std::vector<std::pair<std::string, torch::Tensor>> named;
      for (auto& item : module->named_parameters()) named.emplace_back(item.key(), item.value());
      optim::make_optimizer(cfg_.optimizer_configs.get(phase.optimizer), named, phase.lr);
    }
  }

  // A batch whose activations cannot fit in the machine's memory is refused before the run starts,
  // not found by the allocator phases later. The estimate is a lower bound (fp32; per layer and token
  // ten widest-width vectors and one attention row; logits and their gradient), so a refusal is sure.
  void check_activation_memory() const {
    if (device_.type() != torch::kCPU) return;
    const double machine = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
    if (!(machine > 0)) return;
    const double context = static_cast<double>(adapter_.context());
    for (size_t i = 0; i < phases_.size(); ++i) {
      const LevelShape& shape = levels_.shape(phases_[i].level);
      int64_t width = 1;
      for (const auto& [space, size] : shape.sizes) width = std::max(width, size);
      const double tokens = static_cast<double>(cfg_.batch_size_of(phases_[i])) * context / dist_.world();
      const double bytes = 4 * tokens *
                           (static_cast<double>(shape.layers) * (10.0 * static_cast<double>(width) + context) +
                            2.0 * static_cast<double>(adapter_.vocab_size()));
      if (bytes > machine) {
        throw ConfigError(cfg_.file, phases_.size() > 1 ? fmt::format("phases[{}].batch_size", i) : "data.batch_size",
                          fmt::format("a micro-batch of {} sequences of {} tokens at level {} needs at least {:.1f} GiB of "
                                      "activations, more than this machine's {:.1f} GiB; lower the batch size and raise "
                                      "grad_accum to keep the global batch",
                                      cfg_.batch_size_of(phases_[i]), adapter_.context(), phases_[i].level,
                                      bytes / (1 << 30), machine / (1 << 30)));
      }
    }
  }

  // Data-parallel runs split each step's global batch (batch_size × grad_accum rows) evenly over the ranks.
  void check_batch_split() const {
    if (!dist_.distributed()) return;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const int64_t rows = cfg_.batch_size_of(phases_[i]) * cfg_.grad_accum_of(phases_[i]);
      if (rows % dist_.world() != 0) {
        throw InputError(fmt::format("{}: phase {} (level {}): its global batch of batch_size × grad_accum = {} rows "
                                     "does not split evenly over {} ranks; change data.batch_size / grad_accum or the "
                                     "number of processes",
                                     cfg_.file, i + 1, phases_[i].level, rows, dist_.world()));
      }
    }
  }

  // Rank 0's parameters and buffers on every rank (a no-op for one process).
  void sync_module(const std::string& what) {
    if (!dist_.distributed()) return;
    std::vector<torch::Tensor> tensors;
    for (auto& [name, t] : module_tensors(*module_)) tensors.push_back(t);
    dist_.broadcast(tensors, what);
  }

  void emit(const json& row) {
    if (metrics_) metrics_->append(row.dump());
  }

  void restore(const RunCheckpoint& ckpt, const std::string& path, const std::string& fingerprint) {
    state_ = ckpt.state;
    if (state_.fingerprint != fingerprint) {
      throw InputError(path + ": the config changed since this run started (fingerprint " + state_.fingerprint +
                       ", now " + fingerprint + "); restore the original config or start a new output directory");
    }
    // Everything is checked before the metrics are truncated or a tensor is built.
    check_run_position(state_, phases_, levels_.count(), path);
    check_data_unchanged(path);
    resumed_ = true;
    if (dist_.is_main()) {
      metrics_ = std::make_unique<MetricsWriter>((fs::path(dir_) / kMetricsName).string(), state_.metrics_offset);
    }
    module_ = adapter_.build(levels_.shape(state_.model_level));
    load_module_tensors(*module_, ckpt.model, path);
    module_->to(device_);
    for (const auto& [level, tensors] : ckpt.theta_pre) {
      if (level >= 1 && level < levels_.count()) theta_pre_[level] = tensors;  // the levels this run has
    }
    if (ckpt.rng) set_cpu_rng_state(*ckpt.rng);
    if (state_.entered && state_.phase < static_cast<int>(phases_.size())) {
      make_optimizer(phases_[state_.phase]);
      if (!ckpt.optimizer) throw InputError(path + ": checkpoint has no optimizer state");
      optim::load_state(*optimizer_, *ckpt.optimizer);
    } else if (!state_.entered && state_.phase > 0 && state_.phase < static_cast<int>(phases_.size()) &&
               project_state()) {
      // Between two phases: the finished phase's optimizer, whose state the next level change
      // projects (see checkpoint()).
      if (ckpt.optimizer) {
        make_optimizer(phases_[state_.phase - 1]);
        optim::load_state(*optimizer_, *ckpt.optimizer);
      }
    }
    log(fmt::format("resumed {} at phase {}/{} step {} (global step {})", dir_, state_.phase + 1, phases_.size(),
                    state_.step, state_.global_step));
  }

  // -------------------------------------------------------------------------- phases
  // Moves the model to this phase's level (coalesce going down; de-coalesce + interpolate going
  // up), builds the phase's optimizer, evaluates and checkpoints. With `optimizer_state: project`
  // the old optimizer's state moves along with the model (optim/state_projection.h) into the new one.
  void enter_phase() {
    const PhaseConfig& phase = phases_[state_.phase];
    // The level transition is charged to the phase it leads into.
    state_.phase_tokens0 = state_.tokens;
    state_.phase_flops0 = state_.train_flops + state_.op_flops;
    state_.phase_wall0 = state_.train_wall;
    if (phase.level != state_.model_level) {
      const auto t0 = Clock::now();
      std::optional<optim::NamedOptimizerState> old_state = state_to_project(phase);
      TensorMap current = module_tensors(*module_);
      TransitionResult moved;
      const bool down = phase.level > state_.model_level;
      if (down) {
        theta_pre_[state_.model_level] = clone_tensors(current);
        moved = levels_.down(current, state_.model_level);
      } else {
        // Growth (a level never coalesced from) has no θ_pre: de-coalescing alone (the config
        // loader refuses an explicit alpha < 1 there).
        const auto pre = theta_pre_.find(phase.level);
        moved = levels_.up(current, pre != theta_pre_.end() ? &pre->second : nullptr, phase.level,
                           phase.interpolation.value_or(cfg_.levels.interpolation));
        theta_pre_.erase(phase.level);
      }
      std::optional<optim::NamedOptimizerState> carried;  // the state for the new optimizer
      if (old_state) {
        const int large = down ? state_.model_level : phase.level;
        carried = optim::project_optimizer_state(*old_state, adapter_.param_map(), levels_.shape(large), levels_.factors(),
                                                 down ? optim::StateProjection::coalesce : optim::StateProjection::decoalesce);
        moved.flops += carried->elements();  // operators count one FLOP per element written
      }
      module_ = adapter_.build(levels_.shape(phase.level));
      load_module_tensors(*module_, moved.tensors, "level " + std::to_string(phase.level) + " tensors");
      module_->to(device_);
      // The operators ran on every rank from identical inputs; rank 0's result is broadcast anyway
      // so that identical parameters are guaranteed, not assumed.
      sync_module("the parameters after " + moved.op);
      make_optimizer(phase);
      if (carried) optim::import_optimizer_state(*optimizer_, optim::named_parameters(*module_), *carried);
      const int from = state_.model_level;
      state_.model_level = phase.level;
      state_.op_flops += moved.flops * dist_.world();  // every rank ran the operators
      state_.train_wall += seconds_since(t0);
      json row = {{"type", "transition"},      {"phase", state_.phase},
                  {"from_level", from},        {"to_level", phase.level},
                  {"op", moved.op},            {"op_flops", moved.flops},
                  {"shape", levels_.shape(phase.level).to_string()},
                  {"params", param_count(*module_)},
                  {"optimizer_state", carried ? "project" : "reset"},
                  {"optimizer_state_bytes", optim::state_bytes(*optimizer_)}};
      add_counters(row);
      emit(row);
      log(fmt::format("{} level {} -> {} ({}), {} params, optimizer state {}", moved.op, from, phase.level,
                      levels_.shape(phase.level).to_string(), human_count(param_count(*module_)),
                      carried ? "projected" : "reset"));
    } else {
      make_optimizer(phase);
    }
    state_.entered = true;
    if (state_.phase > 0) evaluate();  // the loss right after the level change
    checkpoint();
  }

  bool project_state() const { return cfg_.levels.optimizer_state == OptimizerStateMode::project; }

  // With `optimizer_state: project`, the current optimizer's state by parameter name, taken before
  // the level change into `phase`; nullopt means the new optimizer starts afresh (reset). Projection
  // needs the same optimizer on both sides of the change; otherwise warn and reset.
  std::optional<optim::NamedOptimizerState> state_to_project(const PhaseConfig& phase) {
    if (!project_state() || state_.phase == 0) return std::nullopt;
    const PhaseConfig& previous = phases_[state_.phase - 1];
    if (previous.optimizer != phase.optimizer) {
      warn(fmt::format("optimizer_state: project: phase {} uses {} but phase {} used {}; resetting the optimizer state",
                       state_.phase + 1, phase.optimizer, state_.phase, previous.optimizer));
      return std::nullopt;
    }
    if (!optimizer_) {  // resumed from a checkpoint that did not keep the finished phase's optimizer
      warn(fmt::format("optimizer_state: project: no optimizer state of phase {} to project; resetting it", state_.phase));
      return std::nullopt;
    }
    auto exported = optim::export_optimizer_state(*optimizer_, optim::named_parameters(*module_));
    optimizer_.reset();  // the exported copy is all that is needed now
    return exported;
  }

  void make_optimizer(const PhaseConfig& phase) {
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (auto& item : module_->named_parameters()) named.emplace_back(item.key(), item.value());
    optimizer_ = optim::make_optimizer(cfg_.optimizer_configs.get(phase.optimizer), named, phase.lr);
    params_.clear();
    for (auto& item : named) params_.push_back(item.second);
  }

  void finish_phase() {
    const PhaseConfig& phase = phases_[state_.phase];
    const double flops = state_.train_flops + state_.op_flops - state_.phase_flops0;
    json row = {{"type", "phase_end"},
                {"phase", state_.phase},
                {"level", phase.level},
                {"shape", levels_.shape(phase.level).to_string()},
                {"params", param_count(*module_)},
                {"steps", phase.steps},
                {"optimizer", phase.optimizer},
                {"phase_tokens", state_.tokens - state_.phase_tokens0},
                {"phase_flops", flops},
                {"phase_wall", state_.train_wall - state_.phase_wall0},
                {"val_loss", state_.last_val_loss}};
    add_counters(row);
    emit(row);
    // Record the position a resume starts from: the next phase, not yet entered. The loop's
    // ++phase follows, so undo the increment after the checkpoint.
    state_.step = 0;
    state_.entered = false;
    state_.last_eval_step = -1;
    ++state_.phase;
    checkpoint();
    --state_.phase;
  }

  // -------------------------------------------------------------------------- one step
  // What the loops of train_step.h and evaluate.h work on: the model of the current level.
  TrainingContext context() const {
    return TrainingContext{adapter_, *module_, *batches_, device_, precision_, dist_, cfg_.distributed.bucket_mb * 1024 * 1024};
  }

  void train_step(const PhaseConfig& phase) {
    const auto t0 = Clock::now();
    const double lr = lr_at(phase, state_.step);
    StepSpec spec;
    spec.global_step = state_.global_step;
    spec.micro_rows = cfg_.batch_size_of(phase);
    spec.micro_count = cfg_.grad_accum_of(phase);
    spec.lr = lr;
    spec.max_grad_norm = cfg_.train.max_grad_norm;
    spec.where = fmt::format("(phase {} step {})", state_.phase + 1, state_.step + 1);
    const StepResult step = vcycle::train_step(context(), *optimizer_, params_, spec);
    const double loss_value = step.loss, grad_norm = step.grad_norm;
    const bool finite = step.finite();
    if (!finite && cfg_.train.on_nonfinite == OnNonfinite::stop) {
      throw RunError(fmt::format("non-finite {} at phase {} (level {}) step {}: loss {}, grad norm {} "
                                 "(no checkpoint written; set train.on_nonfinite: skip_step to skip such steps)",
                                 std::isfinite(loss_value) ? "gradient norm" : "loss", state_.phase + 1, phase.level,
                                 state_.step + 1, loss_value, grad_norm));
    }
    if (finite) {
      state_.loss_sum += loss_value;
      ++state_.loss_count;
    } else {
      ++state_.skipped_steps;
      warn(fmt::format("skipped step {} of phase {}: non-finite loss {} / grad norm {}", state_.step + 1, state_.phase + 1,
                      loss_value, grad_norm));
    }
    count_step(step.tokens, seconds_since(t0));
    if (state_.step % cfg_.train.log_every == 0 || state_.step == phase.steps) log_train(phase, lr, grad_norm);
  }

  // Advances the position and the counters by one step of `tokens` that took `wall` seconds.
  void count_step(double tokens, double wall) {
    const double step_flops = tokens * train_flops_per_token(levels_.flops(state_.model_level));
    ++state_.step;
    ++state_.global_step;
    state_.tokens += tokens;
    state_.train_flops += step_flops;
    state_.train_wall += wall;
    recent_tokens_ += tokens;
    recent_flops_ += step_flops;
    recent_wall_ += wall;
  }

  // The train row and progress line: the mean loss and the throughput since the last one.
  void log_train(const PhaseConfig& phase, double lr, double grad_norm) {
    const double train_loss = state_.loss_count > 0 ? state_.loss_sum / static_cast<double>(state_.loss_count)
                                                    : std::numeric_limits<double>::quiet_NaN();
    const double tok_s = recent_wall_ > 0 ? recent_tokens_ / recent_wall_ : 0;
    const double flop_s = recent_wall_ > 0 ? recent_flops_ / recent_wall_ : 0;
    json row = {{"type", "train"},         {"phase", state_.phase},     {"level", phase.level},
                {"step", state_.step},     {"lr", lr},                  {"grad_norm", grad_norm},
                {"tokens_per_s", tok_s},   {"optimizer_state_bytes", optim::state_bytes(*optimizer_)}};
    row["train_loss"] = std::isfinite(train_loss) ? json(train_loss) : json(nullptr);
    row["model_flops_per_s"] = flop_s;
    if (peak_) {
      row["mfu"] = mfu(flop_s);
      row["peak_flops"] = group_peak();
      row["peak_source"] = to_string(peak_->source);
    }
    add_counters(row);
    emit(row);
    progress(phase, train_loss, lr, tok_s, flop_s);
    state_.loss_sum = 0;
    state_.loss_count = 0;
    recent_tokens_ = recent_flops_ = recent_wall_ = 0;
  }

  // -------------------------------------------------------------------------- evaluation
  void evaluate() {
    const auto t0 = Clock::now();
    const EvalResult eval =
        vcycle::evaluate(context(), fmt::format("the evaluation loss (phase {} step {})", state_.phase + 1, state_.step));
    state_.last_val_loss = eval.loss;
    state_.last_eval_step = state_.step;
    state_.eval_flops += eval.tokens * forward_flops_per_token(levels_.flops(state_.model_level));
    state_.eval_wall += seconds_since(t0);
    json row = {{"type", "eval"},
                {"phase", state_.phase},
                {"level", state_.model_level},
                {"step", state_.step},
                {"val_loss", state_.last_val_loss}};
    if (bytes_per_token_ > 0) row["val_bits_per_byte"] = state_.last_val_loss / std::log(2.0) / bytes_per_token_;
    for (const auto& [name, mean] : eval.metrics) row[name] = mean;
    add_counters(row);
    emit(row);
  }

  void add_counters(json& row) const {
    row["global_step"] = state_.global_step;
    row["tokens"] = state_.tokens;
    row["train_flops"] = state_.train_flops + state_.op_flops;  // operators count as training cost
    row["op_flops"] = state_.op_flops;
    row["eval_flops"] = state_.eval_flops;
    row["wall_s"] = state_.train_wall;
    row["eval_wall_s"] = state_.eval_wall;
  }

  // -------------------------------------------------------------------------- checkpoint
  void checkpoint() {
    RunCheckpoint ckpt;
    for (const auto& [name, t] : module_tensors(*module_)) {
      if (!torch::isfinite(t).all().item<bool>()) {
        throw RunError(fmt::format("tensor '{}' is non-finite at phase {} step {}: refusing to write a checkpoint", name,
                                   state_.phase + 1, state_.step));
      }
      ckpt.model[name] = t;
    }
    if (!dist_.is_main()) return;  // rank 0 writes the run's checkpoints
    ckpt.theta_pre = theta_pre_;
    // Between phases (entered false) the finished phase's optimizer is kept too when the next level
    // change projects it, so that a resume from here projects the same state.
    const bool keep_finished = project_state() && state_.phase < static_cast<int>(phases_.size());
    if (optimizer_ && (state_.entered || keep_finished)) ckpt.optimizer = optim::save_state(*optimizer_);
    ckpt.rng = cpu_rng_state();
    metrics_->sync();
    state_.metrics_offset = metrics_->offset();
    ckpt.state = state_;
    save_run_checkpoint((fs::path(dir_) / kRunCheckpointFile).string(), ckpt);
    if (cfg_.train.keep_checkpoints > 0) {  // between phases (entered false) a phase has just ended
      retain_checkpoint(dir_, (fs::path(dir_) / kRunCheckpointFile).string(), state_.global_step,
                        state_.entered ? 0 : state_.phase, cfg_.train.keep_checkpoints);
    }
  }

  static TensorMap clone_tensors(const TensorMap& in) {
    TensorMap out;
    for (const auto& [name, t] : in) out[name] = t.clone();
    return out;
  }

  // -------------------------------------------------------------------------- output
  // The data-parallel group's peak: one process's × the number of processes (1 without a group).
  double group_peak() const { return peak_ ? peak_->flops_per_s * dist_.world() : 0; }
  double mfu(double flop_s) const { return peak_ ? flop_s / group_peak() : 0; }

  void progress(const PhaseConfig& phase, double loss, double lr, double tok_s, double flop_s) {
    if (options_.quiet) return;
    // ETA: the FLOPs still to spend at this phase's rate (a fair guess across levels, since the
    // smaller levels run at a similar FLOP rate on the same hardware).
    const double flop_rate = recent_wall_ > 0 ? recent_flops_ / recent_wall_ : 0;
    if (flop_rate > 0) last_flop_rate_ = flop_rate;
    double remaining = 0;
    for (size_t p = static_cast<size_t>(state_.phase); p < phases_.size(); ++p) {
      const int64_t steps_left = phases_[p].steps - (static_cast<int>(p) == state_.phase ? state_.step : 0);
      remaining += static_cast<double>(steps_left) *
                   static_cast<double>(cfg_.batch_size_of(phases_[p]) * cfg_.grad_accum_of(phases_[p]) * adapter_.context()) *
                   train_flops_per_token(levels_.flops(phases_[p].level));
    }
    const double eta = last_flop_rate_ > 0 ? remaining / last_flop_rate_ : std::numeric_limits<double>::quiet_NaN();
    const std::string mfu_text = peak_ ? fmt::format(" MFU {:.1f}%", 100.0 * mfu(flop_s)) : "";
    const std::string line =
        fmt::format("[{}] phase {}/{} L{} step {:>5}/{} loss {:.4f} val {:.4f} lr {:.2e} {:>7} tok/s {:>7}FLOP/s{} ETA {}",
                    options_.label, state_.phase + 1, phases_.size(), phase.level, state_.step, phase.steps, loss,
                    state_.last_val_loss, lr, human_count(tok_s), human_count(flop_s), mfu_text, human_duration(eta));
    std::cerr << line << "\n" << std::flush;
  }

  // Printed even with --quiet: the user must know (once, by rank 0).
  void warn(const std::string& msg) const {
    if (dist_.is_main()) std::cerr << "[" << options_.label << "] warning: " << msg << "\n";
  }

  void log(const std::string& msg) const {
    if (!options_.quiet) std::cerr << "[" << options_.label << "] " << msg << "\n";
  }

  // Level shapes and operators for this run (K = 1: a single shape, no operators).
  static LevelPlan level_plan(const RunConfig& cfg, const ModelAdapter& adapter, const std::vector<PhaseConfig>& phases) {
    int count = 1;
    for (const auto& p : phases) count = std::max(count, p.level);
    return LevelPlan(cfg, adapter, count);
  }

  const RunConfig& cfg_;
  const ModelAdapter& adapter_;
  std::vector<PhaseConfig> phases_;
  std::string dir_;
  CycleOptions options_;
  static inline const DistContext single_process_{};
  const DistContext& dist_;
  torch::Device device_;
  Precision precision_;
  LevelPlan levels_;

  RunState state_;
  bool resumed_ = false;
  std::unique_ptr<BatchSource> batches_;
  std::shared_ptr<torch::nn::Module> module_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<torch::Tensor> params_;
  std::map<int, TensorMap> theta_pre_;  // level -> parameters saved just before coalescing it
  std::unique_ptr<MetricsWriter> metrics_;
  // Text bytes per validation token (config/token_meta.h), for losses in bits per byte that compare
  // across tokenizers; 0 when unknown or not a token model.
  double bytes_per_token_ = 0;
  double recent_tokens_ = 0, recent_flops_ = 0, recent_wall_ = 0, last_flop_rate_ = 0;
  std::optional<PeakFlops> peak_;  // MFU's denominator (one process's peak); none: no MFU
};

}  // namespace

CycleResult run_cycle(const RunConfig& cfg, const ModelAdapter& adapter, const std::vector<PhaseConfig>& phases,
                      const std::string& dir, const CycleOptions& options) {
  if (phases.empty()) throw InputError(cfg.file + ": no phases to run");
  return CycleRunner(cfg, adapter, phases, dir, options).run();
}

bool cycle_finished(const std::string& dir, const std::string& fingerprint) {
  return run_checkpoint_finished((fs::path(dir) / kRunCheckpointFile).string(), fingerprint);
}

}  // namespace vcycle
