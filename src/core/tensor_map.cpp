// Named-tensor helpers and LevelShape; see include/vcycle/core/tensor_map.h and level_shape.h.
#include "vcycle/core/tensor_map.h"

#include <sstream>

#include <torch/utils.h>

#include "vcycle/core/errors.h"
#include "vcycle/operators/level_shape.h"

namespace vcycle {

int64_t LevelShape::size(const std::string& space) const {
  auto it = sizes.find(space);
  if (it == sizes.end()) throw InputError("level shape has no width space '" + space + "' (" + to_string() + ")");
  return it->second;
}

std::string LevelShape::to_string() const {
  std::ostringstream out;
  out << "layers=" << layers;
  for (const auto& [name, size] : sizes) out << " " << name << "=" << size;
  return out.str();
}

void check_heads_size(const char* family, int64_t heads_size, int64_t head_size) {
  if (head_size < 1 || heads_size % head_size != 0) {
    throw InputError(std::string(family) + " shape: heads size " + std::to_string(heads_size) +
                     " is not a multiple of head_size " + std::to_string(head_size));
  }
}

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
