// The LLaMA model (llama.h) as a vcycle model: its config from the run's YAML `model:` section, its
// parameter map, and the ModelAdapter that lets vcycle's scheduler, checkpoints and report train it.
//
//   model: { type: llama, layers: 4, hidden: 256, heads: 4, ffn: 688, context: 128 }
//
// Width spaces: hidden (d, unit 1), heads (H·h, unit h: heads merge whole, h never changes) and ffn
// (f, unit 1); every `layers.{layer}.*` tensor is in the depth space.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <vcycle/config/run_config.h>
#include <vcycle/models/model_adapter.h>
#include <vcycle/operators/param_map.h>

#include "llama.h"

namespace llama {

// Parses a `model: { type: llama, ... }` map. Keys: layers, hidden, heads, ffn, context (required),
// head_size (default hidden / heads), vocab (256), rope_base (10000), norm_eps (1e-5) and
// param_map (a YAML parameter-map file to use instead of llama_param_map; relative to the working
// directory). Throws vcycle::ConfigError naming `file`, the key and the line.
struct LlamaModelConfig {
  LlamaConfig model;           // the level-1 (full) model
  std::string param_map_file;  // "" = the C++ map below
};
LlamaModelConfig llama_config_from_yaml(const YAML::Node& model, const std::string& file);

// The parameter map, written with the C++ builder:
//   q/k/v_proj  out: heads, in: hidden        o_proj     out: hidden, in: heads
//   gate/up     out: ffn,   in: hidden        down_proj  out: hidden, in: ffn
//   RMSNorm γ   out: hidden (untied head, so the final norm is `out` too)
//   embed_tokens  feature axis out: hidden    lm_head    in: hidden (untied)
vcycle::ParamMap llama_param_map(const LlamaConfig& cfg);
// {hidden: d, heads: H·h, ffn: f}, layers L.
vcycle::LevelShape llama_level_shape(const LlamaConfig& cfg);
// `base` with the sizes of `shape`; vcycle::InputError when heads is not a multiple of head_size.
LlamaConfig llama_config_for_shape(const LlamaConfig& base, const vcycle::LevelShape& shape);

class LlamaAdapter final : public vcycle::ModelAdapter {
 public:
  // Uses `map` when given (e.g. loaded with vcycle::param_map_load), else llama_param_map(cfg).
  explicit LlamaAdapter(LlamaConfig cfg, std::optional<vcycle::ParamMap> map = std::nullopt);
  // From a run config's `model:` section (`file`: the YAML file, for messages); the factory the
  // program registers as model type `llama` (vcycle::register_model).
  static std::shared_ptr<LlamaAdapter> from_yaml(const YAML::Node& model, const std::string& file);
  // From the run config's `model:` section.
  static std::shared_ptr<LlamaAdapter> from_config(const vcycle::RunConfig& run) { return from_yaml(run.model, run.file); }

  std::string type() const override { return "llama"; }
  vcycle::LevelShape top_shape() const override { return llama_level_shape(cfg_); }
  vcycle::ParamMap param_map() const override { return map_; }
  std::shared_ptr<torch::nn::Module> build(const vcycle::LevelShape& shape) const override;
  torch::Tensor loss(torch::nn::Module& module, const vcycle::Batch& batch) const override;
  vcycle::FlopShape flop_shape(const vcycle::LevelShape& shape) const override;
  int64_t context() const override { return cfg_.context; }
  int64_t vocab_size() const override { return cfg_.vocab; }
  const LlamaConfig& config() const { return cfg_; }

 private:
  LlamaConfig cfg_;
  vcycle::ParamMap map_;
};

// Builds the adapter's model at every level of the run's V-cycle and checks its tensors against the
// parameter map (vcycle::param_map_validate), so that a map missing a parameter or declaring a
// wrong axis size fails before training, with an InputError naming the tensor. Works for any adapter.
void validate_param_map(const vcycle::RunConfig& cfg, const vcycle::ModelAdapter& adapter);

}  // namespace llama
