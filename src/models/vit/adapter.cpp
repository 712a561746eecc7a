// The built-in ViT family; see include/vcycle/models/vit/adapter.h.
#include "vcycle/models/vit/adapter.h"

#include <torch/nn/functional/loss.h>

#include "vcycle/config/run_config.h"
#include "vcycle/data/image_data.h"
#include "vcycle/models/transformer.h"
#include "vcycle/models/vit/param_map.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {

ViTConfig vit_config_from_yaml(const YAML::Node& model, const std::string& file) {
  YamlReader r(model, file, "model");
  ViTConfig c;
  r.get<std::string>("type");
  c.image_size = r.get_or<int64_t>("image_size", 28);
  if (c.image_size <= 0) r.fail("image_size", "must be > 0, got " + std::to_string(c.image_size));
  c.patch = r.get_positive<int64_t>("patch");
  if (c.image_size % c.patch != 0) {
    r.fail("patch", "image_size (" + std::to_string(c.image_size) + ") is not divisible by patch (" +
                        std::to_string(c.patch) + ")");
  }
  c.channels = r.get_or<int64_t>("channels", 1);
  if (c.channels <= 0) r.fail("channels", "must be > 0, got " + std::to_string(c.channels));
  c.classes = r.get_or<int64_t>("classes", 10);
  if (c.classes < 2) r.fail("classes", "must be >= 2, got " + std::to_string(c.classes));
  read_transformer_sizes(r, c);
  r.finish();
  return c;
}

LevelShape ViTAdapter::top_shape() const { return vit_level_shape(cfg_); }

ParamMap ViTAdapter::param_map() const { return vit_param_map(cfg_); }

ViTConfig ViTAdapter::config_for(const LevelShape& shape) const { return vit_config_for_shape(cfg_, shape); }

std::shared_ptr<torch::nn::Module> ViTAdapter::build(const LevelShape& shape) const {
  return ViT(config_for(shape)).ptr();
}

namespace {
ViTImpl& as_vit(torch::nn::Module& module) {
  auto* vit = dynamic_cast<ViTImpl*>(&module);
  TORCH_CHECK(vit != nullptr, "ViTAdapter: module is not a ViT");
  return *vit;
}
}  // namespace

torch::Tensor ViTAdapter::loss(torch::nn::Module& module, const Batch& batch) const {
  return as_vit(module).loss(batch.input, batch.target);
}

torch::Tensor ViTAdapter::eval_loss(torch::nn::Module& module, const Batch& batch,
                                    std::map<std::string, double>& metrics) const {
  const auto logits = as_vit(module).forward(batch.input);
  metrics["val_accuracy"] = logits.argmax(-1).eq(batch.target).to(torch::kDouble).mean().item<double>();
  return torch::nn::functional::cross_entropy(logits, batch.target);
}

FlopShape ViTAdapter::flop_shape(const LevelShape& shape) const {
  const ViTConfig c = config_for(shape);
  const int64_t d_attn = c.heads * c.head_size;
  // The blocks, plus the patch projection (d × C·p·p) and the classifier (classes × d). The formula
  // charges every matmul to each of the T = N + 1 tokens; the projection really runs on the N patches
  // and the classifier on the class token only, an overcount of (C·p² + classes)·d per token against
  // the blocks' L·(4·d_attn + 2·f)·d — well under 1% for the shipped configs. Attention is
  // bidirectional over all T tokens: the full T × T products the formula counts.
  FlopShape f;
  f.matmul_params =
      transformer_blocks_matmul_params(c) + c.channels * c.patch * c.patch * c.hidden + c.classes * c.hidden;
  f.layers = c.layers;
  f.context = c.tokens();
  f.attn_width = d_attn;
  return f;
}

std::unique_ptr<BatchSource> ViTAdapter::batches(const RunConfig& cfg) const {
  ImageDataOptions o;
  o.image_size = cfg_.image_size;
  o.channels = cfg_.channels;
  o.classes = cfg_.classes;
  o.tokens_per_image = cfg_.tokens();
  return std::make_unique<ImageBatchSource>(cfg.data.train, cfg.data.valid, o, cfg.data.batch_size, cfg.seed,
                                            cfg.eval.batches);
}

}  // namespace vcycle
