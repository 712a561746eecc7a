// Named tensors: a model's parameters and buffers by dotted name, the currency of the operators.
#pragma once

#include <map>
#include <string>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace vcycle {

using TensorMap = std::map<std::string, torch::Tensor>;

// Parameters and buffers of `module` (detached, sharing storage with the module).
TensorMap module_tensors(const torch::nn::Module& module);

// Copies `tensors` into `module`'s parameters and buffers. Every name must match exactly once and
// every shape must agree; otherwise InputError naming the tensor (and `what`, e.g. a file name).
void load_module_tensors(torch::nn::Module& module, const TensorMap& tensors, const std::string& what = "tensors");

}  // namespace vcycle
