// Checkpoint retention (`train.keep_checkpoints: N`): besides the run's one resumable checkpoint
// (and its `.prev`), numbered copies for going back to, or exporting, an earlier point of a run.
//
//   checkpoint-step<G>.ckpt    after a mid-phase checkpoint at global step G; the last N are kept
//   checkpoint-phase<P>.ckpt   after phase P (1-based) ends; always kept
// Copies are hard links where the file system allows (a save renames a new file over the current
// one, so a link keeps the old contents), else copies.
#pragma once

#include <cstdint>
#include <string>

namespace vcycle {

// Records `current` (the checkpoint just written in `dir`) as a numbered copy and prunes the step
// copies beyond the newest `keep`. `phase_end` > 0: the copy is checkpoint-phase<phase_end>.ckpt.
// RunError naming the file on an I/O failure.
void retain_checkpoint(const std::string& dir, const std::string& current, int64_t global_step, int phase_end, int keep);

}  // namespace vcycle
