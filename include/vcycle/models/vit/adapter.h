// The built-in ViT / DeiT family: `model: { type: vit, image_size, patch, channels, classes, layers,
// hidden, heads, ffn }` in the run's YAML. Trains on IDX image files (image_data.h: data.train and
// data.valid name the images files, e.g. Fashion-MNIST's train and official test set) and reports
// validation accuracy (`val_accuracy`) next to the loss.
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "vcycle/models/vit/vit.h"
#include "vcycle/models/model_adapter.h"

namespace vcycle {

// Parses a `model: { type: vit, ... }` map: image_size (default 28), patch (required, divides
// image_size), channels (default 1), classes (default 10), layers, hidden, heads, head_size (default
// hidden / heads), ffn (default 4·hidden). ConfigError naming `model.<key>`; unknown keys are errors.
ViTConfig vit_config_from_yaml(const YAML::Node& model, const std::string& file);

class ViTAdapter final : public ModelAdapter {
 public:
  explicit ViTAdapter(ViTConfig cfg) : cfg_(cfg) {}
  std::string type() const override { return "vit"; }
  LevelShape top_shape() const override;
  ParamMap param_map() const override;
  std::shared_ptr<torch::nn::Module> build(const LevelShape& shape) const override;
  torch::Tensor loss(torch::nn::Module& module, const Batch& batch) const override;
  // The loss, and the share of correctly classified images as "val_accuracy".
  torch::Tensor eval_loss(torch::nn::Module& module, const Batch& batch,
                          std::map<std::string, double>& metrics) const override;
  FlopShape flop_shape(const LevelShape& shape) const override;
  std::unique_ptr<BatchSource> batches(const RunConfig& cfg) const override;
  bool reads_token_files() const override { return false; }
  int64_t context() const override { return cfg_.tokens(); }  // patches + class token per image
  int64_t vocab_size() const override { return cfg_.classes; }  // no token ids; labels are below this
  const ViTConfig& config() const { return cfg_; }
  ViTConfig config_for(const LevelShape& shape) const;

 private:
  ViTConfig cfg_;
};

}  // namespace vcycle
