// The cycle runner: walks the phases of a run through the levels, trains, applies the operators
// at level changes, evaluates, logs and checkpoints. See include/vcycle/schedules/cycle_runner.h.
//
// Read top to bottom: CycleRunner::run (the phase loop) → start / restore → enter_phase (level
// transitions) → train_step → evaluate → checkpoint. The checkpoint's content is run_checkpoint.h's;
// the step and the evaluation are shared with fine-tuning (train_step.h, evaluate.h).
#include "vcycle/schedules/cycle_runner.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vcycle/core/checkpoint.h"
#include "vcycle/core/distributed.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/metrics.h"
#include "vcycle/core/precision.h"
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
    for (; state_.phase < static_cast<int>(phases_.size()); ++state_.phase) {
      if (!state_.entered) enter_phase();
      const PhaseConfig& phase = phases_[state_.phase];
      while (state_.step < phase.steps) {
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
    enum : int64_t { kFresh = 0, kResume = 1, kRefused = 2 };
    int64_t decision = kFresh;
    std::string ckpt_bytes;
    if (dist_.is_main()) {
      try {
        if (fs::exists(ckpt_path) && !options_.resume) {
          throw InputError(dir_ + " already holds a run; pass --resume to continue it, or delete the directory to start over");
        }
        batches_ = adapter_.batches(cfg_);  // validates the data files before anything is written
        fs::create_directories(dir_);
        if (fs::exists(ckpt_path)) {
          ckpt_bytes = read_file(ckpt_path);
          decision = kResume;
        }
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
      restore(run_checkpoint_from(checkpoint_from_bytes(ckpt_bytes, ckpt_path), ckpt_path), ckpt_path, fingerprint);
      dist_.check_same(state_.global_step, "the resumed global step");
      return;
    }
    state_.fingerprint = fingerprint;
    if (dist_.is_main()) metrics_ = std::make_unique<MetricsWriter>((fs::path(dir_) / kMetricsName).string(), 0);
    torch::manual_seed(cfg_.seed);
    module_ = adapter_.build(levels_.shape(1));
    if (!cfg_.init.empty()) load_module_tensors(*module_, checkpoint_model(load_checkpoint(cfg_.init)), cfg_.init);
    module_->to(device_);
    sync_module("the initial parameters");
    state_.model_level = 1;
    evaluate();  // the curve starts at the initial loss
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
        moved = levels_.up(current, theta_pre_.at(phase.level), phase.level);
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
    json row = {{"type", "train"},         {"phase", state_.phase},     {"level", phase.level},
                {"step", state_.step},     {"lr", lr},                  {"grad_norm", grad_norm},
                {"tokens_per_s", tok_s},   {"optimizer_state_bytes", optim::state_bytes(*optimizer_)}};
    row["train_loss"] = std::isfinite(train_loss) ? json(train_loss) : json(nullptr);
    add_counters(row);
    emit(row);
    progress(phase, train_loss, lr, tok_s);
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
  void progress(const PhaseConfig& phase, double loss, double lr, double tok_s) {
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
    const std::string line = fmt::format("[{}] phase {}/{} L{} step {:>5}/{} loss {:.4f} val {:.4f} lr {:.2e} {:>7} tok/s ETA {}",
                                         options_.label, state_.phase + 1, phases_.size(), phase.level, state_.step,
                                         phase.steps, loss, state_.last_val_loss, lr, human_count(tok_s), human_duration(eta));
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
  double recent_tokens_ = 0, recent_flops_ = 0, recent_wall_ = 0, last_flop_rate_ = 0;
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
