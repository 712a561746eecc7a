// Built-in model families and the GPT adapter; see include/vcycle/models/registry.h.
#include "vcycle/models/registry.h"

#include "vcycle/data/token_data.h"
#include "vcycle/models/gpt/param_map.h"
#include "vcycle/schedules/level_plan.h"
#include "vcycle/core/errors.h"
#include "vcycle/data/tokenizer.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {


std::unique_ptr<BatchSource> ModelAdapter::batches(const RunConfig& cfg) const {
  return std::make_unique<TokenBatchSource>(cfg.data.train, cfg.data.valid, vocab_size(), cfg.data.batch_size, context(),
                                            cfg.seed, cfg.eval.batches);
}

// ---------------------------------------------------------------------------- GPT
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
  // Per block: qkv (3·d_attn × d) + attention output (d × d_attn) + MLP in (f × d) and out (d × f);
  // plus the LM head (V × d), a matmul whether or not it shares the embedding's storage.
  FlopShape f;
  f.matmul_params = c.layers * (3 * d_attn * c.hidden + d_attn * c.hidden + 2 * c.hidden * c.ffn) + c.vocab * c.hidden;
  f.layers = c.layers;
  f.context = c.context;
  f.attn_width = d_attn;
  return f;
}

// ---------------------------------------------------------------------------- registry
std::shared_ptr<ModelAdapter> make_builtin_model(const RunConfig& cfg) {
  if (cfg.model_type == "gpt") return std::make_shared<GPTAdapter>(gpt_config_from_yaml(cfg.model, cfg.file));
  if (cfg.model_type == "bert") return std::make_shared<BertAdapter>(bert_config_from_yaml(cfg.model, cfg.file));
  if (cfg.model_type == "vit") return std::make_shared<ViTAdapter>(vit_config_from_yaml(cfg.model, cfg.file));
  throw ConfigError(yaml_where(cfg.file, cfg.model["type"]), "model.type",
                    "unknown model type '" + cfg.model_type + "' (valid: gpt, bert, vit)");
}

void validate_model_config(const RunConfig& cfg, const ModelAdapter& adapter) {
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = make_tokenizer(cfg.data.tokenizer);
  } catch (const InputError& e) {
    throw ConfigError(yaml_where(cfg.file, cfg.model), "data.tokenizer", e.what());
  }
  if (adapter.reads_token_files() && adapter.vocab_size() < tok->vocab_size()) {
    // vocab_size() counts the ids the token files may hold (BERT: model.vocab less its [MASK] id).
    throw ConfigError(yaml_where(cfg.file, cfg.model), "model.vocab",
                      "the model takes token ids below " + std::to_string(adapter.vocab_size()) + ", fewer than the " +
                          tok->name() + " tokenizer's vocab " + std::to_string(tok->vocab_size()));
  }
  // Every level's shape must divide evenly, and the parameter map must describe the model built at
  // every level: fail now, before anything trains, not at the first coalesce.
  try {
    const LevelPlan plan(cfg, adapter, cfg.levels.count);
    if (plan.count() > 1) {
      const ParamMap map = adapter.param_map();
      for (int level = 1; level <= plan.count(); ++level) {
        try {
          param_map_validate(map, module_tensors(*adapter.build(plan.shape(level))), plan.shape(level));
        } catch (const InputError& e) {
          throw InputError("the parameter map of model '" + adapter.type() + "' does not fit its level " +
                           std::to_string(level) + " (" + plan.shape(level).to_string() + "): " + e.what());
        }
      }
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const InputError& e) {
    throw ConfigError(yaml_where(cfg.file, cfg.model), "levels", std::string("cannot build ") +
                      std::to_string(cfg.levels.count) + " levels: " + e.what());
  }
}

// ---------------------------------------------------------------------------- loading configs
RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  RunConfig cfg = load_config_unchecked(path, overrides);
  validate_model_config(cfg, *make_builtin_model(cfg));
  return cfg;
}

FinetuneConfig load_finetune_config(const std::string& path, const std::vector<std::string>& overrides) {
  return load_finetune_config_with(path, overrides, load_config);
}

}  // namespace vcycle
