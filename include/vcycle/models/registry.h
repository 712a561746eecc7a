// Built-in model families, chosen by the YAML key `model.type`.
#pragma once

#include <memory>
#include <string>

#include "vcycle/models/bert/adapter.h"
#include "vcycle/config/finetune_config.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/model_adapter.h"
#include "vcycle/models/vit/adapter.h"

namespace vcycle {

// The adapter for `cfg.model` (model.type: gpt | bert | vit). ConfigError naming the key on a bad model section.
std::shared_ptr<ModelAdapter> make_builtin_model(const RunConfig& cfg);

// Checks a model against its run config: the model's vocab covers the tokenizer's (for models that
// read the token files), and every level
// of the configured V-cycle divides evenly. ConfigError naming the key.
void validate_model_config(const RunConfig& cfg, const ModelAdapter& adapter);

// Parses a `model: { type: gpt, ... }` map. `file` is used in error messages.
GPTConfig gpt_config_from_yaml(const YAML::Node& model, const std::string& file);

// Adapter for the built-in GPT decoder.
class GPTAdapter final : public ModelAdapter {
 public:
  explicit GPTAdapter(GPTConfig cfg) : cfg_(cfg) {}
  std::string type() const override { return "gpt"; }
  LevelShape top_shape() const override;
  ParamMap param_map() const override;
  std::shared_ptr<torch::nn::Module> build(const LevelShape& shape) const override;
  torch::Tensor loss(torch::nn::Module& module, const Batch& batch) const override;
  FlopShape flop_shape(const LevelShape& shape) const override;
  int64_t context() const override { return cfg_.context; }
  int64_t vocab_size() const override { return cfg_.vocab; }
  const GPTConfig& config() const { return cfg_; }
  GPTConfig config_for(const LevelShape& shape) const;

 private:
  GPTConfig cfg_;
};

// Loads and validates a run config for a built-in model (model.type: gpt, ...): load_config_unchecked
// (config/run_config.h), then the `model:` section through make_builtin_model and
// validate_model_config. Throws ConfigError naming file, key path and line.
RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Loads and validates a fine-tuning config (config/finetune_config.h) whose base run uses a built-in
// model: its base config is loaded with load_config.
FinetuneConfig load_finetune_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace vcycle
