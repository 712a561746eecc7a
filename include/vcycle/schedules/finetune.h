// LoRA fine-tuning of a trained checkpoint on a downstream text (`vcycle finetune CONFIG.yaml`).
//
// The config names a trained run (its config, for the model, and the checkpoint `vcycle train` or
// `vcycle run` wrote: runs/<name>/baseline/checkpoint.ckpt or runs/<name>/vcycle/checkpoint.ckpt),
// the LoRA layers to add, the downstream token files and one training phase:
//
//   name: finetune-lora
//   base: { config: configs/default.yaml, checkpoint: runs/default/vcycle/checkpoint.ckpt }
//   lora: { r: 8, alpha: 16, dropout: 0.0, targets: [attn.qkv, attn.proj, mlp.fc, mlp.proj] }
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
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "vcycle/config/run_config.h"
#include "vcycle/models/lora.h"

namespace vcycle {

struct FinetuneConfig {
  std::string file;                  // the YAML file (for messages)
  std::string name;                  // run name
  uint64_t seed = 1234;              // adapter init, dropout and batch order
  std::string device = "cpu";        // cpu, cuda, cuda:N
  int threads = 0;                   // intra-op threads; 0 = all cores
  RunConfig base;                    // the trained run's config (its data paths replaced by ours)
  std::string base_checkpoint;       // base.checkpoint
  lora::LoRAOptions lora;            // lora.r, lora.alpha, lora.dropout
  std::vector<std::string> targets;  // lora.targets (patterns, see lora.h)
  DataConfig data;                   // downstream train/valid token files
  PhaseConfig phase;                 // steps, optimizer, lr, warmup, schedule, min_lr_ratio
  optim::OptimizerConfigs optimizer_configs;  // per-name optimizer options, parsed, as in a run config
  YAML::Node optimizers;             // the `optimizers:` map as written
  EvalConfig eval;                   // every, batches
  double max_grad_norm = 1.0;        // global-norm clipping of the adapter gradients; 0 disables
  int64_t log_every = 25;            // progress line cadence in steps
  std::string output;                // directory for adapters.lora and finetune.json
};

// Loads and validates a fine-tuning config (and the base config it names). ConfigError naming the
// file, key path and line; `overrides` are "key=value" as for run configs.
FinetuneConfig load_finetune_config(const std::string& path, const std::vector<std::string>& overrides = {});

struct FinetuneResult {
  std::vector<std::string> layers;  // wrapped layer names
  int64_t total_params = 0;         // every parameter of the injected model (base + adapters)
  int64_t trainable_params = 0;     // adapter parameters (A and B)
  int64_t adapter_bytes = 0;        // bytes of A and B
  int64_t grad_bytes = 0;           // bytes of their gradients
  int64_t optimizer_state_bytes = 0;  // optimizer state after training (adapters only)
  int64_t base_param_bytes = 0;     // bytes of the frozen base parameters, for comparison
  double loss_before = 0;           // validation loss of the base model on the downstream data
  double loss_after = 0;            // the same after fine-tuning (adapters unmerged)
  double loss_merged = 0;           // the same with the adapters merged into W (should equal loss_after)
  std::string adapter_path;         // <output>/adapters.lora
  std::string summary_path;         // <output>/finetune.json
};

// Loads the base checkpoint, injects LoRA, evaluates, fine-tunes, evaluates again, writes the
// adapters-only file and a JSON summary. Progress lines on stderr unless `quiet`. InputError for bad
// input (checkpoint, data), RunError when training fails (non-finite loss).
FinetuneResult run_finetune(const FinetuneConfig& cfg, bool quiet);

}  // namespace vcycle
