// The built-in BERT family; see include/vcycle/models/bert/adapter.h.
#include "vcycle/models/bert/adapter.h"

#include "vcycle/models/bert/param_map.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/bert/mlm_data.h"
#include "vcycle/models/transformer.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {

BertConfig bert_config_from_yaml(const YAML::Node& model, const std::string& file) {
  YamlReader r(model, file, "model");
  BertConfig c;
  r.get<std::string>("type");
  read_transformer_sizes(r, c);
  c.context = r.get_positive<int64_t>("context");
  c.vocab = r.get_or<int64_t>("vocab", 257);
  // Token files hold uint16 ids below vocab − 1; the last id is [MASK].
  if (c.vocab < 2 || c.vocab > 65537) {
    r.fail("vocab", "must be in [2, 65537] (ordinary token ids + [MASK], the last id), got " + std::to_string(c.vocab));
  }
  c.segments = r.get_or<int64_t>("segments", 2);
  if (c.segments <= 0) r.fail("segments", "must be > 0, got " + std::to_string(c.segments));
  r.finish();
  return c;
}

LevelShape BertAdapter::top_shape() const { return bert_level_shape(cfg_); }

ParamMap BertAdapter::param_map() const { return bert_param_map(cfg_); }

BertConfig BertAdapter::config_for(const LevelShape& shape) const { return bert_config_for_shape(cfg_, shape); }

std::shared_ptr<torch::nn::Module> BertAdapter::build(const LevelShape& shape) const {
  return Bert(config_for(shape)).ptr();
}

torch::Tensor BertAdapter::loss(torch::nn::Module& module, const Batch& batch) const {
  auto* bert = dynamic_cast<BertImpl*>(&module);
  TORCH_CHECK(bert != nullptr, "BertAdapter::loss: module is not a BERT");
  return bert->loss(batch.input, batch.target);
}

FlopShape BertAdapter::flop_shape(const LevelShape& shape) const {
  const BertConfig c = config_for(shape);
  const int64_t d_attn = c.heads * c.head_size;
  // The blocks, plus the MLM head's dense (d × d) and its decoder (V × d, tied to the embedding but a
  // matmul all the same), both applied at every position as forward() does. The attention is
  // bidirectional: every query scores all T keys, exactly the full T × T products the formula's
  // 4·L·T·d_attn counts.
  FlopShape f;
  f.matmul_params = transformer_blocks_matmul_params(c) + c.hidden * c.hidden + c.vocab * c.hidden;
  f.layers = c.layers;
  f.context = c.context;
  f.attn_width = d_attn;
  return f;
}

std::unique_ptr<BatchSource> BertAdapter::batches(const RunConfig& cfg) const {
  return std::make_unique<MlmBatchSource>(cfg.data.train, cfg.data.valid, cfg_.mask_id(), cfg_.mask_id(),
                                          cfg.data.batch_size, cfg_.context, cfg.seed, cfg.eval.batches);
}

}  // namespace vcycle
