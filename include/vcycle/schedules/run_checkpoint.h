// The run checkpoint: what a training run saves so that it can continue exactly where it stopped,
// and the one place that knows how that maps onto the checkpoint container (core/checkpoint.h):
//
//   meta JSON         RunState: the run's position, counters and config fingerprint
//   "model/<name>"    the current model's parameters and buffers
//   "pre<l>/<name>"   θ_pre(l): level l's parameters saved just before it was coalesced
//   blob "optimizer"  the optimizer's state (optim::save_state), when the run keeps one
//   blob "rng"        the global CPU generator's state
//
// The operator commands (`vcycle coalesce` ...) write model-only checkpoints in the same layout,
// with {"level": l} as their meta JSON. Checkpoints written by vcycle 0.1 load unchanged
// (tests/fixtures/checkpoint_0.1).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "vcycle/config/run_config.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/tensor_map.h"

namespace vcycle {

// The file name of a run's checkpoint in its output directory.
inline constexpr const char* kRunCheckpointFile = "checkpoint.ckpt";

// Everything about a run's position and counters; the checkpoint's meta JSON.
struct RunState {
  int phase = 0;              // index into phases
  int64_t step = 0;           // optimizer steps done in this phase
  bool entered = false;       // the level transition into `phase` is done and its optimizer exists
  int model_level = 1;        // level of the model currently held
  int64_t global_step = 0;    // optimizer steps over all phases (picks the training batch)
  double tokens = 0;          // training tokens processed
  double train_flops = 0;     // model FLOPs of training steps
  double op_flops = 0;        // FLOPs of coalesce / de-coalesce / interpolate
  double eval_flops = 0;      // FLOPs of evaluation (reported, not counted as training)
  double train_wall = 0;      // seconds in training steps and operators
  double eval_wall = 0;       // seconds in evaluation
  double loss_sum = 0;        // training loss since the last progress row
  int64_t loss_count = 0;
  int64_t skipped_steps = 0;  // steps skipped for a non-finite loss (on_nonfinite: skip_step)
  double last_val_loss = std::numeric_limits<double>::quiet_NaN();
  int64_t last_eval_step = -1;  // phase step of the last evaluation
  // Cumulative counters when the current phase started (for per-phase figures).
  double phase_tokens0 = 0, phase_flops0 = 0, phase_wall0 = 0;
  uint64_t metrics_offset = 0;  // bytes of metrics.jsonl that belong to this position
  bool done = false;
  std::string fingerprint;      // config_fingerprint of the run's config and phases
  std::map<std::string, std::string> data_files;  // data path -> file_fingerprint when the run started (empty: older checkpoint)
};

struct RunCheckpoint {
  RunState state;
  TensorMap model;                       // the current model, by module tensor name
  std::map<int, TensorMap> theta_pre;    // level -> its parameters saved just before coalescing it
  std::optional<std::string> optimizer;  // optim::save_state bytes
  std::optional<std::string> rng;        // cpu_rng_state() bytes
};

Checkpoint to_checkpoint(const RunCheckpoint& run);
// InputError naming `what` (usually the path) when the meta JSON is not a RunState.
RunCheckpoint run_checkpoint_from(const Checkpoint& ckpt, const std::string& what);

// InputError "<what>: checkpoint field 'phase' is 7, ..." when the run position is not one this run
// can be at: phase outside 0 .. phases.size(), step outside 0 .. the phase's steps, a model level
// outside 1 .. level_count or not the level of the phase it is in, a negative counter. Checked
// before a resume touches anything, so that a hand-edited checkpoint with a valid CRC is refused.
void check_run_position(const RunState& state, const std::vector<PhaseConfig>& phases, int level_count,
                        const std::string& what);

void save_run_checkpoint(const std::string& path, const RunCheckpoint& run);
RunCheckpoint load_run_checkpoint(const std::string& path);

// True when `path` holds the checkpoint of a finished run whose config fingerprint is
// `fingerprint`; false when it is missing, unreadable, unfinished or of another config.
bool run_checkpoint_finished(const std::string& path, const std::string& fingerprint);

// The global CPU generator's state as the "rng" blob holds it, and its restoration.
std::string cpu_rng_state();
void set_cpu_rng_state(const std::string& bytes);

// ---- the model of any vcycle checkpoint (a run's, or one the operator commands wrote)
// Its "model/<name>" tensors under <name>; empty when it holds none.
TensorMap checkpoint_model(const Checkpoint& ckpt);
// The level of a run checkpoint's model (RunState::model_level); 1 when the meta JSON does not say.
// InputError naming `what` when the meta JSON is malformed.
int checkpoint_model_level(const Checkpoint& ckpt, const std::string& what);
// A checkpoint holding only `model`, with meta JSON {"level": level}.
void save_model_checkpoint(const std::string& path, const TensorMap& model, int level);

}  // namespace vcycle
