// Running a cycle: the plain baseline (K = 1, one phase) and the multi-level schedules share this code.
// The phases walk the levels one step at a time (run_config.h checks the walk):
//
//   Down (level l -> l+1): save θ_pre(l); coalesce to l+1; train.
//   Up (level l+1 -> l):   de-coalesce to l's shape; interpolate with θ_pre(l) when one was saved
//                          since the last up-step to l, else keep the de-coalesced model; train.
//
// The V-cycle is 1 -> ... -> K -> ... -> 1; growth starts at K from a fresh small model
// (K -> ... -> 1: de-coalescing only); repeated cycles (1 -> 2 -> 1 -> 2 -> 1) blend with the
// θ_pre of the most recent coalescing.
//
// Output directory of one run:
//   metrics.jsonl    — eval / train / transition / phase_end rows (see README "Metrics")
//   checkpoint.ckpt  — the latest checkpoint (and checkpoint.ckpt.prev, the one before); its
//                      content is run_checkpoint.h's
//   .vcycle.lock     — held (flock) by the one process writing the directory (run_lock.h)
// A directory that holds a run is continued with `resume` or replaced with `restart`, never silently.
// `resume` takes checkpoint.ckpt, or checkpoint.ckpt.prev when the newest is missing or fails its
// checks (said on stderr and in a `resume` metrics row; the bad file is kept as checkpoint.ckpt.bad).
// A stop signal (stop_signal.h) ends the run after its current step with a checkpoint.
// Checkpoints are taken after every level transition, every `train.checkpoint_every` steps and at
// every phase end; `resume` continues from the latest and reproduces an uninterrupted run exactly
// (CPU, same threads).
//
// Data-parallel (options.dist with world > 1, see distributed.h): every rank runs this loop on its
// rows of each step's global batch; gradients are all-reduced before clipping and the optimizer step;
// the operators run on every rank and rank 0's result is broadcast; rank 0 alone writes the output
// directory and sends the checkpoint to the others on resume.
#pragma once

#include <string>
#include <vector>

#include "vcycle/config/run_config.h"
#include "vcycle/core/distributed.h"
#include "vcycle/models/model_adapter.h"

namespace vcycle {

struct CycleOptions {
  bool resume = false;    // continue from dir/checkpoint.ckpt if it exists
  std::string label;      // shown in progress lines ("baseline", "vcycle")
  bool quiet = false;     // no progress lines
  const DistContext* dist = nullptr;  // data-parallel group; null = the single process
  bool restart = false;            // start from step 0 over a directory that holds a run (replacing it)
  bool allow_data_change = false;  // resume although the data files' fingerprints changed
};

struct CycleResult {
  std::string dir;
  double final_val_loss = 0;
  bool resumed = false;
};

CycleResult run_cycle(const RunConfig& cfg, const ModelAdapter& adapter, const std::vector<PhaseConfig>& phases,
                      const std::string& dir, const CycleOptions& options);

// True when `dir` holds a finished run whose config fingerprint is `fingerprint`.
bool cycle_finished(const std::string& dir, const std::string& fingerprint);

}  // namespace vcycle
