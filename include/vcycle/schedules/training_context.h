// What a training loop works on, shared by its steps and evaluations (train_step.h, evaluate.h):
// the cycle runner and fine-tuning build one for the model they currently train.
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "vcycle/core/distributed.h"
#include "vcycle/core/precision.h"
#include "vcycle/models/model_adapter.h"

namespace vcycle {

struct TrainingContext {
  const ModelAdapter& adapter;
  torch::nn::Module& module;  // the model being trained (on `device`)
  BatchSource& batches;
  torch::Device device;
  Precision precision;        // forward passes run under AutocastGuard(precision, device)
  const DistContext& dist;    // the data-parallel group; DistContext{} for the single process
  int64_t bucket_bytes = DistContext::kDefaultBucketBytes;  // gradient all-reduce bucket size
};

}  // namespace vcycle
