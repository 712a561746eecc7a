// Built-in model families, chosen by the YAML key `model.type`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vcycle/config/finetune_config.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/bert/adapter.h"
#include "vcycle/models/gpt/adapter.h"
#include "vcycle/models/model_adapter.h"
#include "vcycle/models/vit/adapter.h"

namespace vcycle {

// The adapter for `cfg.model` (model.type: gpt | bert | vit). ConfigError naming the key on a bad
// model section; an unknown type lists the valid ones.
std::shared_ptr<ModelAdapter> make_builtin_model(const RunConfig& cfg);

// Checks a model against its run config: the model's vocab covers the tokenizer's (for models that
// read the token files), and every level
// of the configured V-cycle divides evenly. ConfigError naming the key.
void validate_model_config(const RunConfig& cfg, const ModelAdapter& adapter);

// Loads and validates a run config for a built-in model (model.type: gpt, ...): load_config_unchecked
// (config/run_config.h), then the `model:` section through make_builtin_model and
// validate_model_config. Throws ConfigError naming file, key path and line.
RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Loads and validates a fine-tuning config (config/finetune_config.h) whose base run uses a built-in
// model: its base config is loaded with load_config.
FinetuneConfig load_finetune_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace vcycle
