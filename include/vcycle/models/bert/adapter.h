// The built-in BERT (masked-language model) family: `model: { type: bert, layers, hidden, heads, ffn,
// context, ... }` in the run's YAML. Trains on the run's token files with BERT's masking (mlm_data.h).
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "vcycle/models/bert/bert.h"
#include "vcycle/models/model_adapter.h"

namespace vcycle {

// Parses a `model: { type: bert, ... }` map: layers, hidden, heads, ffn (default 4·hidden), context
// required or defaulted as for GPT; head_size (default hidden / heads), vocab (default 257: the byte
// tokenizer's 256 ids + [MASK]), segments (default 2). ConfigError naming `model.<key>`; unknown keys
// are errors. `file` is used in messages.
BertConfig bert_config_from_yaml(const YAML::Node& model, const std::string& file);

class BertAdapter final : public ModelAdapter {
 public:
  explicit BertAdapter(BertConfig cfg) : cfg_(cfg) {}
  std::string type() const override { return "bert"; }
  LevelShape top_shape() const override;
  ParamMap param_map() const override;
  std::shared_ptr<torch::nn::Module> build(const LevelShape& shape) const override;
  torch::Tensor loss(torch::nn::Module& module, const Batch& batch) const override;
  FlopShape flop_shape(const LevelShape& shape) const override;
  // Masked windows of the run's token files.
  std::unique_ptr<BatchSource> batches(const RunConfig& cfg) const override;
  int64_t context() const override { return cfg_.context; }
  // The token files may hold every id but [MASK] (the last).
  int64_t vocab_size() const override { return cfg_.mask_id(); }
  const BertConfig& config() const { return cfg_; }
  BertConfig config_for(const LevelShape& shape) const;

 private:
  BertConfig cfg_;
};

}  // namespace vcycle
