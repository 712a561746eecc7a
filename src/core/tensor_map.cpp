// Named-tensor helpers; see include/vcycle/core/tensor_map.h.
#include "vcycle/core/tensor_map.h"

#include <sstream>

#include <torch/utils.h>

#include "vcycle/core/errors.h"

namespace vcycle {

TensorMap module_tensors(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& item : module.named_parameters()) out[item.key()] = item.value().detach();
  for (const auto& item : module.named_buffers()) out[item.key()] = item.value().detach();
  return out;
}

void load_module_tensors(torch::nn::Module& module, const TensorMap& tensors, const std::string& what) {
  torch::NoGradGuard no_grad;
  size_t matched = 0;
  auto copy_into = [&](const std::string& name, torch::Tensor& target) {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw InputError(what + ": missing tensor '" + name + "'");
    if (it->second.sizes() != target.sizes()) {
      std::ostringstream msg;
      msg << what << ": tensor '" << name << "' has shape " << it->second.sizes() << ", the model expects "
          << target.sizes();
      throw InputError(msg.str());
    }
    target.copy_(it->second);
    ++matched;
  };
  for (auto& item : module.named_parameters()) copy_into(item.key(), item.value());
  for (auto& item : module.named_buffers()) copy_into(item.key(), item.value());
  if (matched != tensors.size()) {
    auto params = module.named_parameters();
    auto buffers = module.named_buffers();
    for (const auto& [name, t] : tensors) {
      if (!params.contains(name) && !buffers.contains(name)) throw InputError(what + ": unexpected tensor '" + name + "'");
    }
  }
}

}  // namespace vcycle
