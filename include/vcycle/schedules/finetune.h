// LoRA fine-tuning of a trained checkpoint on a downstream text (`vcycle finetune CONFIG.yaml`):
//
//   FinetuneConfig cfg = load_finetune_config("configs/finetune-lora.yaml");  // models/registry.h
//   FinetuneResult r = run_finetune(cfg, /*quiet=*/false);
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "vcycle/config/finetune_config.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/lora.h"
#include "vcycle/models/registry.h"  // load_finetune_config

namespace vcycle {

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
  std::map<std::string, double> metrics_before;  // the model's extra validation metrics (val_accuracy, ...) before
  std::map<std::string, double> metrics_after;   // ... and after fine-tuning
  std::string adapter_path;         // <output>/adapters.lora
  std::string summary_path;         // <output>/finetune.json
};

// Loads the base checkpoint, injects LoRA, evaluates, fine-tunes, evaluates again, writes the
// adapters-only file and a JSON summary. Progress lines on stderr unless `quiet`. InputError for bad
// input (checkpoint, data), RunError when training fails (non-finite loss).
FinetuneResult run_finetune(const FinetuneConfig& cfg, bool quiet);

}  // namespace vcycle
