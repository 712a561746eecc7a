// One optimizer step of a training loop (training_context.h); the one step the cycle runner and
// fine-tuning share.
//
// Gradient accumulation: the step's batch comes as `micro_count` equal micro-batches, each loss
// scaled by 1/micro_count, so the accumulated gradient is the gradient of the mean loss over the
// whole batch. Data-parallel: each rank back-propagates its contiguous share of the same global
// batch, each piece's loss scaled by its share of that batch, and the all-reduced sum is the global
// batch's gradient. Then global-norm clipping, and the optimizer step if all is finite.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "vcycle/schedules/training_context.h"

namespace vcycle {

struct StepSpec {
  int64_t global_step = 0;  // picks the step's batch (BatchSource::train_batch)
  int64_t micro_rows = 0;   // rows per micro-batch
  int64_t micro_count = 1;  // micro-batches per step
  double lr = 0;            // learning rate of this step
  double max_grad_norm = 0; // global-norm clipping; 0 disables it
  std::string where;        // names the step in the all-reduces' error messages
};

struct StepResult {
  double loss = 0;       // mean loss over the step's global batch
  double tokens = 0;     // tokens in the step's global batch
  double grad_norm = 0;  // global gradient norm before clipping
  bool finite() const { return std::isfinite(loss) && std::isfinite(grad_norm); }
};

// Sets the learning rate, computes the clipped gradient of the step's batch into the grads of
// `params` (the optimizer's parameters, in its order) and steps the optimizer, unless the loss or
// the gradient norm is non-finite (the optimizer is then untouched; the caller decides whether that
// stops the run or skips the step).
StepResult train_step(const TrainingContext& ctx, torch::optim::Optimizer& optimizer,
                      const std::vector<torch::Tensor>& params, const StepSpec& spec);

}  // namespace vcycle
