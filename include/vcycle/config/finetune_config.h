// The fine-tuning config (`vcycle finetune CONFIG.yaml`, schedules/finetune.h).
//
// The config names a trained run (its config, for the model, and the checkpoint `vcycle train` or
// `vcycle run` wrote: runs/<name>/baseline/checkpoint.ckpt or runs/<name>/vcycle/checkpoint.ckpt),
// the LoRA layers to add, the downstream token files and one training phase:
//
//   name: finetune-lora
//   base: { config: configs/default.yaml, checkpoint: runs/default/vcycle/checkpoint.ckpt }
//   lora: { r: 8, alpha: 16, dropout: 0.0, targets: [attn.qkv, attn.proj, mlp.fc, mlp.proj] }
//                              # or slices of the fused qkv, quoted: targets: ["attn.qkv[q,v]"]
//   data: { train: data/licenses/train.bin, valid: data/licenses/valid.bin, batch_size: 16 }
//   steps: 300
//   optimizer: adamw            # any registered optimizer; options under `optimizers:` as in a run
//   lr: 1e-3
//   warmup: 20
//   schedule: cosine            # or constant; min_lr_ratio as in a phase
//   eval: { every: 100, batches: 10 }
//   max_grad_norm: 1.0          # 0 disables clipping
//   log_every: 25
//   output: runs/finetune-lora  # gets adapters.lora and finetune.json
//
// Every key is validated and unknown keys are errors naming the file, key path and line. The data
// files must be tokenized with the base run's tokenizer (`data.tokenizer` defaults to it).
// load_finetune_config (models/registry.h) loads one whose base run uses a built-in model.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <yaml-cpp/yaml.h>

#include "vcycle/config/run_config.h"
#include "vcycle/optim/registry.h"

namespace vcycle {

// `lora:` without its targets; the fine-tuning run turns it into lora::LoRAOptions (models/lora.h).
struct LoraConfig {
  TORCH_ARG(int64_t, r) = 8;         // adapter rank
  TORCH_ARG(double, alpha) = 16.0;   // the update is scaled by alpha / r (default 2r)
  TORCH_ARG(double, dropout) = 0.0;  // dropout probability on the adapter's input
};

struct FinetuneConfig {
  std::string file;                  // the YAML file (for messages)
  std::string name;                  // run name
  uint64_t seed = 1234;              // adapter init, dropout and batch order
  std::string device = "cpu";        // cpu, cuda, cuda:N
  int threads = 0;                   // intra-op threads; 0 = all cores
  RunConfig base;                    // the trained run's config (its data paths replaced by ours)
  std::string base_checkpoint;       // base.checkpoint
  LoraConfig lora;                   // lora.r, lora.alpha, lora.dropout
  std::vector<std::string> targets;  // lora.targets (patterns, see models/lora.h)
  DataConfig data;                   // downstream train/valid token files
  PhaseConfig phase;                 // steps, optimizer, lr, warmup, schedule, min_lr_ratio
  optim::OptimizerConfigs optimizer_configs;  // per-name optimizer options, parsed, as in a run config
  YAML::Node optimizers;             // the `optimizers:` map as written
  EvalConfig eval;                   // every, batches
  double max_grad_norm = 1.0;        // global-norm clipping of the adapter gradients; 0 disables
  int64_t log_every = 25;            // progress line cadence in steps
  std::string output;                // directory for adapters.lora and finetune.json
};

// How a fine-tuning config loads its base run's config (`base.config`, with the data paths
// overridden): load_config (models/registry.h) for a built-in model, load_config_unchecked for others.
using BaseConfigLoader = std::function<RunConfig(const std::string& path, const std::vector<std::string>& overrides)>;

// Loads and validates a fine-tuning config, its base config through `load_base`. ConfigError naming
// the file, key path and line; `overrides` are "key=value" as for run configs.
FinetuneConfig load_finetune_config_with(const std::string& path, const std::vector<std::string>& overrides,
                                         const BaseConfigLoader& load_base);

}  // namespace vcycle
