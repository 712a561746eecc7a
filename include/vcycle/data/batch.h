// A training batch and where batches come from: the data layer's output, the model adapter's input
// (model_adapter.h).
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace vcycle {

// One batch: model input and target, and how many tokens it holds (for throughput and FLOPs).
struct Batch {
  torch::Tensor input;   // e.g. (B, T) token ids
  torch::Tensor target;  // e.g. (B, T) next-token ids
  int64_t tokens = 0;    // tokens the model processes in this batch
};

// Where batches come from. Training batches are a pure function of the global step, so a resumed
// run sees exactly the batches an uninterrupted run would. With gradient accumulation a step's
// batch is split into `micro_count` equal micro-batches; micro-batch i is rows [i·B, (i+1)·B) of the
// batch of micro_count·B rows the same step would give without accumulation.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // `batch_size` is the micro-batch size (rows).
  virtual Batch train_batch(int64_t global_step, int64_t batch_size, int64_t micro, int64_t micro_count) = 0;
  virtual int64_t valid_batch_count() const = 0;
  virtual Batch valid_batch(int64_t index) = 0;  // fixed across calls and runs
};

}  // namespace vcycle
