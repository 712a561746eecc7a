// The validation loss of the model of a training loop (training_context.h); the one evaluation the
// cycle runner and fine-tuning share.
#pragma once

#include <map>
#include <string>

#include "vcycle/schedules/training_context.h"

namespace vcycle {

struct EvalResult {
  double loss = 0;    // mean loss over the validation batches (of all ranks)
  double tokens = 0;  // tokens evaluated by all ranks (for the evaluation's FLOPs)
  // The adapter's extra metrics (ModelAdapter::eval_loss, e.g. val_accuracy): this rank's sum over
  // its batches divided by the number of validation batches.
  std::map<std::string, double> metrics;
};

// Runs the validation batches in eval mode without gradients (data-parallel: rank r takes batches
// r, r + world, ...; the loss and token sums are all-reduced) and puts the module back in training
// mode. `what` names the all-reduce in error messages.
EvalResult evaluate(const TrainingContext& ctx, const std::string& what);

}  // namespace vcycle
