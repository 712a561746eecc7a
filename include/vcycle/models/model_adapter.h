// The model adapter: how the V-cycle trains any torch::nn::Module.
//
// A model family tells vcycle four things; the scheduler, operators, checkpoints and report need
// nothing else:
//   1. build(shape)      — a freshly initialised module for a level shape (sizes per width space,
//                          block count). Level 1 is `top_shape()`.
//   2. param_map()       — which tensor axes belong to which width space and role, which tensors to
//                          which block (see param_map.h). The map is level-independent.
//   3. loss(module, b)   — the scalar training loss of a batch.
//   4. flop_shape(shape) — the numbers the FLOP formula needs (flops.h).
// and optionally batches (default: next-token batches from the run's token files) and extra
// validation metrics (eval_loss; default: none).
//
// Contract: build() returns a fresh module on the CPU, initialised from the global torch RNG (seeded
// by the runner at the start of a run; the runner moves the module to the run's device). Every
// parameter *and buffer* must be covered by param_map(), under stable dotted names (register_module
// / register_parameter / register_buffer). loss() gets batches already on the device and returns a
// scalar to call backward() on.
//
// A user's program (see examples/custom_model: a LLaMA-style model built against an installed
// vcycle with `find_package(vcycle)` and `target_link_libraries(... vcycle::vcycle)`):
//   RunConfig cfg = load_config_unchecked(path);   // the `model:` section is the program's own
//   MyAdapter adapter(cfg.model);
//   validate_model_config(cfg, adapter);
//   runtime_init(cfg.threads);
//   run_experiment(cfg, adapter, {});              // baseline + V-cycle + report (experiment.h)
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "vcycle/core/flops.h"
#include "vcycle/data/batch.h"
#include "vcycle/operators/level_shape.h"
#include "vcycle/operators/param_map.h"

namespace vcycle {

struct RunConfig;

class ModelAdapter {
 public:
  virtual ~ModelAdapter() = default;
  virtual std::string type() const = 0;
  virtual LevelShape top_shape() const = 0;
  virtual ParamMap param_map() const = 0;
  virtual std::shared_ptr<torch::nn::Module> build(const LevelShape& shape) const = 0;
  virtual torch::Tensor loss(torch::nn::Module& module, const Batch& batch) const = 0;
  virtual FlopShape flop_shape(const LevelShape& shape) const = 0;
  // Default: next-token windows of `context()` tokens from the run's token files.
  virtual std::unique_ptr<BatchSource> batches(const RunConfig& cfg) const;
  virtual int64_t context() const = 0;     // tokens per training sequence
  virtual int64_t vocab_size() const = 0;  // token ids must be below this
  // Whether batches() reads the run's token files (data.tokenizer, vocab_size() checked against the
  // tokenizer). False for a model with its own data (ViT reads image files).
  virtual bool reads_token_files() const { return true; }
  // The loss of a validation batch, plus optional extra metrics of it in `metrics` (name -> value for
  // this batch, e.g. "val_accuracy"); the runner averages each over the validation batches and writes
  // it into the eval row next to val_loss. Default: loss(), no extra metrics.
  virtual torch::Tensor eval_loss(torch::nn::Module& module, const Batch& batch,
                                  std::map<std::string, double>& metrics) const {
    return loss(module, batch);
  }
};

}  // namespace vcycle
