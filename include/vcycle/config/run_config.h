// The run configuration: one YAML file describes a whole run (model, data, levels, phases,
// optimizers, evaluation, baseline, output). Every key is validated; unknown keys are errors
// naming the file, the key path ("phases[1].lr") and the line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "vcycle/core/distributed_config.h"
#include "vcycle/core/precision.h"
#include "vcycle/core/yaml_util.h"  // load_yaml_with_overrides, apply_override
#include "vcycle/operators/operators.h"
#include "vcycle/optim/registry.h"

namespace vcycle {

enum class LrSchedule { constant, cosine };

// levels.optimizer_state: what the optimizer state does at a level change (state_projection.h).
enum class OptimizerStateMode {
  reset,    // the next phase's optimizer starts afresh
  project,  // the state is moved to the new level with the model operators
};

// train.on_nonfinite: what a step with a non-finite loss or gradient norm does.
enum class OnNonfinite {
  stop,       // fail the run (RunError) without writing a checkpoint
  skip_step,  // skip the optimizer step and go on
};

// The YAML spelling of each value ("reset", "skip_step", ...).
std::string to_string(OptimizerStateMode mode);
std::string to_string(OnNonfinite mode);

// How an up-step blends the de-coalesced model with θ_pre: (1 − alpha)·θ_pre + alpha·deco.
struct InterpolationConfig {
  double alpha = 0.5;
  InterpolationMode mode = InterpolationMode::fixed;
};

// One training phase: `steps` optimizer steps at `level` with its own optimizer and LR schedule.
struct PhaseConfig {
  int level = 1;                                // 1 = full model, K = smallest
  int64_t steps = 0;                            // optimizer steps in this phase
  std::string optimizer = "adamw";              // registry name
  double lr = 1e-3;                             // peak learning rate
  int64_t warmup = 0;                           // linear warmup steps (from 0 to lr)
  LrSchedule schedule = LrSchedule::cosine;     // after warmup
  double min_lr_ratio = 0.1;                    // cosine decays to lr·min_lr_ratio
  int64_t batch_size = 0;                       // micro-batch rows; 0 = data.batch_size
  int64_t grad_accum = 0;                       // micro-batches per step; 0 = data.grad_accum
  // This phase's own interpolation when it is entered by an up-step (levels.interpolation otherwise).
  std::optional<InterpolationConfig> interpolation;
};

struct DataConfig {
  std::string train;              // token file (.bin, uint16) made by `vcycle prepare`
  std::string valid;              // held-out token file
  std::string tokenizer = "byte"; // must match the files' meta.json
  int64_t batch_size = 16;        // sequences per micro-batch
  int64_t grad_accum = 1;         // micro-batches accumulated per optimizer step
};

struct LevelsConfig {
  int count = 1;                          // K; 1 = plain training, no operators
  int64_t width_factor = 2;               // per level step; 1 keeps width
  int64_t depth_factor = 2;               // 1 keeps depth
  Pairing width_pairing = Pairing::halves;  // pairing.width
  Pairing depth_pairing = Pairing::halves;  // pairing.depth
  InterpolationConfig interpolation;        // levels.interpolation: every up-step's, unless its phase has its own
  OptimizerStateMode optimizer_state = OptimizerStateMode::reset;
};

struct EvalConfig {
  int64_t every = 100;   // evaluate every N steps of a phase (and at each phase end)
  int64_t batches = 20;  // validation batches per evaluation (fixed, the same each time)
};

struct TrainConfig {
  double max_grad_norm = 1.0;           // global-norm clipping; 0 disables
  int64_t checkpoint_every = 200;       // steps between checkpoints (phase ends always checkpoint)
  int64_t log_every = 10;               // progress line cadence in steps
  int keep_checkpoints = 0;             // numbered checkpoint-step<G>.ckpt kept (checkpoint_retention.h); 0 = none
  OnNonfinite on_nonfinite = OnNonfinite::stop;
  double peak_flops = 0;                // one process's peak FLOP/s for MFU; 0 = the machine's cached
                                        // `vcycle bench peak` figure, if any (core/peak_flops.h)
};

struct RunConfig {
  std::string file;               // the YAML file this came from (for messages)
  std::string name;               // run name
  uint64_t seed = 1234;
  std::string device = "cpu";     // cpu, cuda, cuda:N
  Precision precision = Precision::fp32;  // autocast forward, fp32 weights and state (precision.h)
  bool precision_auto = false;            // `precision: auto` (the default) chose it
  int threads = 0;                // intra-op threads; 0 = all cores
  YAML::Node model;               // the `model:` map; the model family parses it (models/registry.h)
  std::string model_type;         // model.type
  DataConfig data;
  LevelsConfig levels;
  std::vector<PhaseConfig> phases;     // the level walk (a V-cycle, growth, repeated cycles), in order
  std::optional<PhaseConfig> baseline; // the plain run to compare with (level 1)
  optim::OptimizerConfigs optimizer_configs;  // per-name optimizer options, parsed (optim/registry.h)
  YAML::Node optimizers;          // the `optimizers:` map as written, kept for config_fingerprint only
  EvalConfig eval;
  TrainConfig train;
  DistributedConfig distributed;
  std::string output;             // run directory
  std::string init;               // checkpoint the level-1 model starts from (`vcycle import`); "" = random

  // The phases of the plain baseline run (K = 1): the `baseline:` section as one level-1 phase.
  std::vector<PhaseConfig> baseline_phases() const;
  // A phase's micro-batch size and accumulation count, with the data section's defaults applied.
  int64_t batch_size_of(const PhaseConfig& p) const { return p.batch_size > 0 ? p.batch_size : data.batch_size; }
  int64_t grad_accum_of(const PhaseConfig& p) const { return p.grad_accum > 0 ? p.grad_accum : data.grad_accum; }
};

// Loads and validates a run config, all but its `model:` section: the caller builds its adapter
// from `cfg.model` and checks the pair with validate_model_config (models/registry.h, whose
// load_config does both for the built-in models). Throws ConfigError naming file, key path and
// line; `overrides` are "key=value" (apply_override, core/yaml_util.h).
RunConfig load_config_unchecked(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from a loaded document; `file` names it in messages.
RunConfig parse_config(const YAML::Node& root, const std::string& file);

// A stable fingerprint of everything that determines a run's results (not output paths or threads
// display-only keys); a resumed run must have the same fingerprint as the one it continues.
std::string config_fingerprint(const RunConfig& cfg, const std::vector<PhaseConfig>& phases);

std::string lr_schedule_name(LrSchedule s);

}  // namespace vcycle
