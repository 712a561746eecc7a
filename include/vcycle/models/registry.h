// The model registry: `model.type` in a run config names a factory that builds the ModelAdapter.
// The built-in families (gpt, bert, vit) are registered on the registry's first use; a program adds
// its own model before it loads a config, typically first thing in main:
//
//   int main(int argc, char** argv) {
//     vcycle::register_model("llama", [](const YAML::Node& model, const std::string& file) {
//       return std::make_shared<LlamaAdapter>(llama_config_from_yaml(model, file));
//     });
//     return vcycle::cli_main(argc, argv);   // the whole `vcycle` program (vcycle/cli.h)
//   }
//
// or, at namespace scope in any file linked into the program (not into a static library of its
// own, whose unreferenced objects the linker drops):
//
//   VCYCLE_REGISTER_MODEL(llama, make_llama_adapter);
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "vcycle/config/finetune_config.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/bert/adapter.h"
#include "vcycle/models/gpt/adapter.h"
#include "vcycle/models/model_adapter.h"
#include "vcycle/models/vit/adapter.h"

namespace vcycle {

// Builds a model's adapter from the run config's `model:` map (`file` is the YAML file, for
// ConfigError messages: throw ConfigError naming `model.<key>` on a bad section).
using ModelFactory = std::function<std::shared_ptr<ModelAdapter>(const YAML::Node& model, const std::string& file)>;

// Adds the model type `type` (what `model.type` says) to the registry. Thread-safe. Throws
// std::invalid_argument for an empty name, an empty factory or a type registered already (a
// built-in's name included): two models may not answer to one name.
void register_model(const std::string& type, ModelFactory factory);

// The registered model types in registration order: gpt, bert, vit, then the program's own.
std::vector<std::string> registered_models();

// The adapter for `cfg.model`, by `model.type` through the registry. ConfigError naming the key on
// a bad model section; an unknown type lists the registered ones ("valid: gpt, bert, vit, …").
std::shared_ptr<ModelAdapter> make_model(const RunConfig& cfg);

// Checks a model against its run config: the model's vocab covers the tokenizer's (for models that
// read the token files), and every level
// of the configured V-cycle divides evenly. ConfigError naming the key.
void validate_model_config(const RunConfig& cfg, const ModelAdapter& adapter);

// Loads and validates a run config for a registered model: load_config_unchecked
// (config/run_config.h), then the `model:` section through make_model and validate_model_config.
// Throws ConfigError naming file, key path and line.
RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Loads and validates a fine-tuning config (config/finetune_config.h) whose base run uses a
// registered model: its base config is loaded with load_config.
FinetuneConfig load_finetune_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace vcycle

// Registers `factory` as model type #type during static initialisation of the file that says it.
#define VCYCLE_REGISTER_MODEL(type, factory)                                             \
  static const bool vcycle_model_registered_##type [[maybe_unused]] = [] {               \
    ::vcycle::register_model(#type, factory);                                            \
    return true;                                                                         \
  }()
