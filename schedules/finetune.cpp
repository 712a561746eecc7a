// LoRA fine-tuning of a trained checkpoint: load, inject, evaluate, train the adapters, evaluate,
// save the adapters. See include/vcycle/schedules/finetune.h.
#include "vcycle/schedules/finetune.h"

#include <chrono>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "vcycle/core/checkpoint.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/run_lock.h"
#include "vcycle/core/tensor_map.h"
#include "vcycle/models/registry.h"
#include "vcycle/optim/registry.h"
#include "vcycle/schedules/evaluate.h"
#include "vcycle/schedules/lr_schedule.h"
#include "vcycle/schedules/run_checkpoint.h"
#include "vcycle/schedules/train_step.h"

namespace vcycle {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kAdapterName = "adapters.lora";
constexpr const char* kSummaryName = "finetune.json";

using NamedParams = std::vector<std::pair<std::string, torch::Tensor>>;

int64_t tensor_bytes(const torch::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; }

void say(bool quiet, const std::string& line) {
  if (!quiet) std::cerr << "[finetune] " << line << "\n";
}

// The model tensors of a run checkpoint, which must hold a level-1 (full) model.
TensorMap base_tensors(const std::string& path) {
  const Checkpoint ckpt = load_checkpoint(path);
  const int model_level = checkpoint_model_level(ckpt, path);
  if (model_level != 1) {
    throw InputError(path + ": holds the level-" + std::to_string(model_level) +
                     " (coalesced) model of an unfinished V-cycle; fine-tune a finished run's checkpoint");
  }
  TensorMap out = checkpoint_model(ckpt);
  if (out.empty()) throw InputError(path + ": holds no model tensors (not a `vcycle train`/`vcycle run` checkpoint?)");
  return out;
}

// The base model, exactly as trained; its parameter bytes go into `result`.
std::shared_ptr<torch::nn::Module> load_base(const FinetuneConfig& cfg, const ModelAdapter& adapter, FinetuneResult& result) {
  auto model = adapter.build(adapter.top_shape());
  load_module_tensors(*model, base_tensors(cfg.base_checkpoint), cfg.base_checkpoint);
  for (const auto& p : model->parameters()) result.base_param_bytes += tensor_bytes(p);
  return model;
}

// Injects the LoRA layers (seeded: A's initialisation and dropout masks), moves the model to
// `device` and returns the adapter parameters, the only trainable ones; counts go into `result`.
NamedParams add_lora(const FinetuneConfig& cfg, torch::nn::Module& model, const torch::Device& device, FinetuneResult& result,
                     bool quiet) {
  torch::manual_seed(cfg.seed);
  const auto options = lora::LoRAOptions().r(cfg.lora.r()).alpha(cfg.lora.alpha()).dropout(cfg.lora.dropout());
  result.layers = lora::inject(model, cfg.targets, options);
  model.to(device);
  NamedParams params = lora::adapter_parameters(model);
  for (const auto& [name, p] : params) {
    result.trainable_params += p.numel();
    result.adapter_bytes += tensor_bytes(p);
  }
  for (const auto& p : model.parameters()) result.total_params += p.numel();
  say(quiet, fmt::format("{} LoRA layers (r={}, alpha={}): {} … {}", result.layers.size(), cfg.lora.r(), cfg.lora.alpha(),
                         result.layers.front(), result.layers.back()));
  say(quiet, fmt::format("trainable parameters {} of {} ({:.3f}%)", result.trainable_params, result.total_params,
                         100.0 * static_cast<double>(result.trainable_params) / static_cast<double>(result.total_params)));
  return params;
}

// The downstream data: the base run's config with our token files and batch settings.
std::unique_ptr<BatchSource> downstream_batches(const FinetuneConfig& cfg, const ModelAdapter& adapter) {
  RunConfig data_cfg = cfg.base;
  data_cfg.data = cfg.data;
  data_cfg.eval = cfg.eval;
  data_cfg.seed = cfg.seed;
  return adapter.batches(data_cfg);
}

// Trains the adapters for the phase's steps; the memory of their gradients and optimizer state goes
// into `result`. RunError on a non-finite loss or gradient norm.
void train_adapters(const FinetuneConfig& cfg, const TrainingContext& ctx, const NamedParams& params, FinetuneResult& result,
                    bool quiet) {
  auto optimizer = optim::make_optimizer(cfg.optimizer_configs.get(cfg.phase.optimizer), params, cfg.phase.lr);
  std::vector<torch::Tensor> trainable;
  for (const auto& [name, p] : params) trainable.push_back(p);
  double loss_sum = 0;
  int64_t loss_count = 0;
  const auto t0 = std::chrono::steady_clock::now();
  ctx.module.train();
  for (int64_t step = 0; step < cfg.phase.steps; ++step) {
    StepSpec spec;
    spec.global_step = step;
    spec.micro_rows = cfg.data.batch_size;
    spec.lr = lr_at(cfg.phase, step);
    spec.max_grad_norm = cfg.max_grad_norm;
    const StepResult r = train_step(ctx, *optimizer, trainable, spec);
    if (!r.finite()) {
      throw RunError(fmt::format("non-finite loss {} / gradient norm {} at fine-tuning step {}; lower lr", r.loss,
                                 r.grad_norm, step + 1));
    }
    loss_sum += r.loss;
    ++loss_count;
    const int64_t done = step + 1;
    if (done % cfg.log_every == 0 || done == cfg.phase.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      say(quiet, fmt::format("step {}/{}  lr {:.3g}  train loss {:.4f}  grad norm {:.3f}  {:.1f}s", done, cfg.phase.steps,
                             spec.lr, loss_sum / static_cast<double>(loss_count), r.grad_norm, secs));
      loss_sum = 0;
      loss_count = 0;
    }
    if ((done % cfg.eval.every == 0) && done != cfg.phase.steps) {
      say(quiet, fmt::format("step {}  validation loss {:.4f}", done, evaluate(ctx, "").loss));
    }
  }
  for (const auto& p : trainable) result.grad_bytes += tensor_bytes(p.grad());
  result.optimizer_state_bytes = optim::state_bytes(*optimizer);
}

// The adapters-only file and the JSON summary in cfg.output.
void write_outputs(const FinetuneConfig& cfg, const torch::nn::Module& model, FinetuneResult& result) {
  lock_run_directory(cfg.output);  // one writer per output directory (and creates it)
  result.adapter_path = (fs::path(cfg.output) / kAdapterName).string();
  result.summary_path = (fs::path(cfg.output) / kSummaryName).string();
  lora::save_adapters(model, result.adapter_path);
  const json summary = {{"name", cfg.name},
                        {"base_checkpoint", cfg.base_checkpoint},
                        {"layers", result.layers},
                        {"r", cfg.lora.r()},
                        {"alpha", cfg.lora.alpha()},
                        {"dropout", cfg.lora.dropout()},
                        {"optimizer", cfg.phase.optimizer},
                        {"steps", cfg.phase.steps},
                        {"total_params", result.total_params},
                        {"trainable_params", result.trainable_params},
                        {"trainable_percent", 100.0 * static_cast<double>(result.trainable_params) /
                                                  static_cast<double>(result.total_params)},
                        {"adapter_bytes", result.adapter_bytes},
                        {"grad_bytes", result.grad_bytes},
                        {"optimizer_state_bytes", result.optimizer_state_bytes},
                        {"base_param_bytes", result.base_param_bytes},
                        {"adapter_file_bytes", static_cast<int64_t>(fs::file_size(result.adapter_path))},
                        {"val_loss_before", result.loss_before},
                        {"val_loss_after", result.loss_after},
                        {"val_loss_merged", result.loss_merged},
                        {"val_metrics_before", result.metrics_before},
                        {"val_metrics_after", result.metrics_after}};
  write_file_atomic(result.summary_path, summary.dump(2) + "\n");
}

}  // namespace

FinetuneResult run_finetune(const FinetuneConfig& cfg, bool quiet) {
  const torch::Device device(cfg.device);
  if (device.is_cuda() && !torch::cuda::is_available()) throw InputError(cfg.file + ": device: " + cfg.device + " but CUDA is not available");
  FinetuneResult result;
  auto adapter = make_model(cfg.base);
  auto model = load_base(cfg, *adapter, result);
  const NamedParams params = add_lora(cfg, *model, device, result, quiet);
  auto batches = downstream_batches(cfg, *adapter);
  const DistContext single_process;
  const TrainingContext ctx{*adapter, *model, *batches, device, Precision::fp32, single_process};

  const EvalResult before = evaluate(ctx, "");
  result.loss_before = before.loss;
  result.metrics_before = before.metrics;
  lora::require_routed(*model);  // the forward really goes through the adapters
  say(quiet, fmt::format("validation loss before fine-tuning {:.4f}", result.loss_before));

  train_adapters(cfg, ctx, params, result, quiet);

  // The adapters as trained, and merged into W as they would be deployed.
  const EvalResult after = evaluate(ctx, "");
  result.loss_after = after.loss;
  result.metrics_after = after.metrics;
  lora::merge(*model);
  result.loss_merged = evaluate(ctx, "").loss;
  lora::unmerge(*model);
  say(quiet, fmt::format("validation loss after fine-tuning {:.4f} (merged {:.4f}; before {:.4f})", result.loss_after,
                         result.loss_merged, result.loss_before));

  write_outputs(cfg, *model, result);
  return result;
}

}  // namespace vcycle
