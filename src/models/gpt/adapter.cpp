// The built-in GPT family; see include/vcycle/models/gpt/adapter.h.
#include "vcycle/models/gpt/adapter.h"

#include "vcycle/core/yaml_util.h"
#include "vcycle/models/gpt/param_map.h"
#include "vcycle/models/transformer.h"

namespace vcycle {

GPTConfig gpt_config_from_yaml(const YAML::Node& model, const std::string& file) {
  YamlReader r(model, file, "model");
  GPTConfig c;
  r.get_or<std::string>("type", "gpt");
  read_transformer_sizes(r, c);
  c.context = r.get_positive<int64_t>("context");
  c.vocab = r.get_or<int64_t>("vocab", 256);
  if (c.vocab <= 0 || c.vocab > 65536) r.fail("vocab", "must be in [1, 65536] (tokens are stored as uint16), got " + std::to_string(c.vocab));
  c.tied_embeddings = r.get_or<bool>("tied_embeddings", true);
  r.finish();
  return c;
}

LevelShape GPTAdapter::top_shape() const { return gpt_level_shape(cfg_); }

ParamMap GPTAdapter::param_map() const { return gpt_param_map(cfg_); }

GPTConfig GPTAdapter::config_for(const LevelShape& shape) const { return gpt_config_for_shape(cfg_, shape); }

std::shared_ptr<torch::nn::Module> GPTAdapter::build(const LevelShape& shape) const {
  return GPT(config_for(shape)).ptr();
}

torch::Tensor GPTAdapter::loss(torch::nn::Module& module, const Batch& batch) const {
  auto* gpt = dynamic_cast<GPTImpl*>(&module);
  TORCH_CHECK(gpt != nullptr, "GPTAdapter::loss: module is not a GPT");
  return gpt->loss(batch.input, batch.target);
}

FlopShape GPTAdapter::flop_shape(const LevelShape& shape) const {
  const GPTConfig c = config_for(shape);
  const int64_t d_attn = c.heads * c.head_size;
  // The blocks, plus the LM head (V × d), a matmul whether or not it shares the embedding's storage.
  FlopShape f;
  f.matmul_params = transformer_blocks_matmul_params(c) + c.vocab * c.hidden;
  f.layers = c.layers;
  f.context = c.context;
  f.attn_width = d_attn;
  return f;
}

}  // namespace vcycle
