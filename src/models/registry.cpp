// The model registry and the model-config check; see include/vcycle/models/registry.h.
#include "vcycle/models/registry.h"

#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "vcycle/core/errors.h"
#include "vcycle/core/tensor_map.h"
#include "vcycle/core/yaml_util.h"
#include "vcycle/config/token_meta.h"
#include "vcycle/data/tokenizer.h"
#include "vcycle/operators/level_shape.h"
#include "vcycle/operators/param_map.h"

namespace vcycle {

namespace {

// A family's factory: its `model:` parser feeding its adapter.
template <class Adapter, auto parse>
std::shared_ptr<ModelAdapter> make_adapter(const YAML::Node& model, const std::string& file) {
  return std::make_shared<Adapter>(parse(model, file));
}

struct Registry {
  std::mutex mutex;
  std::vector<std::pair<std::string, ModelFactory>> factories;  // in registration order

  const ModelFactory* find(const std::string& type) const {
    for (const auto& entry : factories) {
      if (entry.first == type) return &entry.second;
    }
    return nullptr;
  }
};

// The registry, with the built-in families entered on first use: explicitly, here, rather than by
// static initialisers in their own files, which a static libvcycle would drop (nothing references
// them) and whose order against a user's registrations is unspecified.
Registry& registry() {
  static Registry r{{},
                    {{"gpt", make_adapter<GPTAdapter, gpt_config_from_yaml>},
                     {"bert", make_adapter<BertAdapter, bert_config_from_yaml>},
                     {"vit", make_adapter<ViTAdapter, vit_config_from_yaml>}}};
  return r;
}

}  // namespace

void register_model(const std::string& type, ModelFactory factory) {
  if (type.empty()) throw std::invalid_argument("register_model: the model type is empty");
  if (!factory) throw std::invalid_argument("register_model: the factory of model type '" + type + "' is empty");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.find(type) != nullptr) throw std::invalid_argument("register_model: model type '" + type + "' is registered already");
  r.factories.emplace_back(type, std::move(factory));
}

std::vector<std::string> registered_models() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> out;
  for (const auto& entry : r.factories) out.push_back(entry.first);
  return out;
}

std::shared_ptr<ModelAdapter> make_model(const RunConfig& cfg) {
  ModelFactory make;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (const ModelFactory* found = r.find(cfg.model_type)) make = *found;
  }
  if (!make) {
    std::string valid;
    for (const auto& name : registered_models()) valid += (valid.empty() ? "" : ", ") + name;
    throw ConfigError(yaml_where(cfg.file, cfg.model["type"]), "model.type",
                      "unknown model type '" + cfg.model_type + "' (valid: " + valid + ")");
  }
  auto adapter = make(cfg.model, cfg.file);
  if (!adapter) {
    throw ConfigError(yaml_where(cfg.file, cfg.model), "model", "the factory of model type '" + cfg.model_type +
                                                                    "' returned no adapter");
  }
  return adapter;
}

namespace {

// The model's vocab covers the tokenizer's, for a model that reads the token files.
void check_vocab(const RunConfig& cfg, const ModelAdapter& adapter) {
  // A SentencePiece vocab is the data's own: meta.json's vocab is checked against the model
  // (check_token_meta) without loading the tokenizer, and every id when the token files open.
  if (cfg.data.tokenizer == "sentencepiece") return;
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
}

// Checks the levels the runner's LevelPlan will build: their shapes (one level: the top shape alone,
// no map read), each one's FLOP shape, and that the parameter map fits the model built at every
// level. InputError otherwise.
void check_levels(const RunConfig& cfg, const ModelAdapter& adapter) {
  const LevelsConfig& l = cfg.levels;
  const std::vector<LevelShape> shapes =
      l.count == 1 ? std::vector<LevelShape>{adapter.top_shape()}
                   : level_shapes(adapter.param_map(), adapter.top_shape(), l.width_factor, l.depth_factor, l.count);
  for (const LevelShape& shape : shapes) adapter.flop_shape(shape);
  if (shapes.size() == 1) return;
  const ParamMap map = adapter.param_map();
  for (int level = 1; level <= static_cast<int>(shapes.size()); ++level) {
    const LevelShape& shape = shapes[level - 1];
    try {
      param_map_validate(map, module_tensors(*adapter.build(shape)), shape);
    } catch (const InputError& e) {
      throw InputError("the parameter map of model '" + adapter.type() + "' does not fit its level " +
                       std::to_string(level) + " (" + shape.to_string() + "): " + e.what());
    }
  }
}

}  // namespace

void validate_model_config(const RunConfig& cfg, const ModelAdapter& adapter) {
  check_vocab(cfg, adapter);
  if (adapter.reads_token_files()) check_token_meta(cfg, adapter.vocab_size());  // the data's own meta.json
  // Every level's shape must divide evenly, and the parameter map must describe the model built at
  // every level: fail now, before anything trains, not at the first coalesce.
  try {
    check_levels(cfg, adapter);
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
  validate_model_config(cfg, *make_model(cfg));
  return cfg;
}

FinetuneConfig load_finetune_config(const std::string& path, const std::vector<std::string>& overrides) {
  return load_finetune_config_with(path, overrides, load_config);
}

}  // namespace vcycle
