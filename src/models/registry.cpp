// The model registry and the model-config check; see include/vcycle/models/registry.h.
#include "vcycle/models/registry.h"

#include <utility>

#include "vcycle/schedules/level_plan.h"
#include "vcycle/core/errors.h"
#include "vcycle/data/tokenizer.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {

namespace {

using ModelFactory = std::shared_ptr<ModelAdapter> (*)(const YAML::Node& model, const std::string& file);

// A family's factory: its `model:` parser feeding its adapter.
template <class Adapter, auto parse>
std::shared_ptr<ModelAdapter> make_adapter(const YAML::Node& model, const std::string& file) {
  return std::make_shared<Adapter>(parse(model, file));
}

// The built-in families by `model.type`, in the order an unknown type's error lists them.
const std::pair<const char*, ModelFactory> kFamilies[] = {
    {"gpt", make_adapter<GPTAdapter, gpt_config_from_yaml>},
    {"bert", make_adapter<BertAdapter, bert_config_from_yaml>},
    {"vit", make_adapter<ViTAdapter, vit_config_from_yaml>},
};

}  // namespace

std::shared_ptr<ModelAdapter> make_builtin_model(const RunConfig& cfg) {
  for (const auto& [name, make] : kFamilies) {
    if (cfg.model_type == name) return make(cfg.model, cfg.file);
  }
  std::string valid;
  for (const auto& family : kFamilies) valid += (valid.empty() ? "" : ", ") + std::string(family.first);
  throw ConfigError(yaml_where(cfg.file, cfg.model["type"]), "model.type",
                    "unknown model type '" + cfg.model_type + "' (valid: " + valid + ")");
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
