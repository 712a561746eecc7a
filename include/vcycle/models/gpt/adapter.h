// The built-in GPT decoder family: `model: { type: gpt, layers, hidden, heads, ffn, context, vocab,
// tied_embeddings }` in the run's YAML. Trains on next-token windows of the run's token files (the
// ModelAdapter default).
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/model_adapter.h"

namespace vcycle {

// Parses a `model: { type: gpt, ... }` map: layers, hidden, heads, head_size (default hidden / heads),
// ffn (default 4·hidden), context (required), vocab (default 256), tied_embeddings (default true).
// ConfigError naming `model.<key>`; unknown keys are errors. `file` is used in messages.
GPTConfig gpt_config_from_yaml(const YAML::Node& model, const std::string& file);

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

}  // namespace vcycle
