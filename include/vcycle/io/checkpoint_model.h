// The model inside any vcycle checkpoint, ready to run: what `export`, `generate` and `eval` start
// from. A checkpoint stores tensors only; the run config says which model family and sizes they
// belong to, and the tensors' shapes say which level of the config's V-cycle they are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "vcycle/config/run_config.h"
#include "vcycle/models/model_adapter.h"
#include "vcycle/operators/level_shape.h"

namespace vcycle {

// The file name a run writes its resolved config under (the YAML after every --set).
inline constexpr const char* kResolvedConfigFile = "config.resolved.yaml";

// The config to read a checkpoint with: `given` when not empty; else config.resolved.yaml in the
// checkpoint's directory or the one above it (a run's output directory). InputError saying to pass
// --config when there is none.
std::string find_checkpoint_config(const std::string& checkpoint, const std::string& given);

struct CheckpointModel {
  RunConfig cfg;                          // the run config (validated)
  std::shared_ptr<ModelAdapter> adapter;  // its built-in model family
  std::shared_ptr<torch::nn::Module> module;  // the checkpoint's model, on the CPU, in eval mode
  int level = 1;                          // the level of the config whose shape the tensors have
  LevelShape shape;                       // that level's shape
};

// Loads the checkpoint's model tensors into a model of the level they match. InputError naming the
// file when it holds no model, or listing every level's mismatch when the tensors match none.
CheckpointModel load_checkpoint_model(const std::string& checkpoint, const std::string& config,
                                      const std::vector<std::string>& overrides = {});

}  // namespace vcycle
