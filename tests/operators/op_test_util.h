// Helpers shared by the operator tests.
#pragma once

#include <string>

// Torch first, Catch last: Debian's LibTorch pulls in glog, whose CHECK macro (abort on failure)
// would otherwise replace Catch's CHECK. Include nothing from torch after this header.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "vcycle/core/errors.h"
#include "vcycle/operators/level_shape.h"
#include "vcycle/models/gpt/param_map.h"
#include "vcycle/operators/operators.h"
#include "vcycle/core/tensor_map.h"

#include <catch2/catch.hpp>

namespace optest {

// A small GPT config whose every width space can grow by 4.
inline vcycle::GPTConfig small_gpt(bool tied) {
  vcycle::GPTConfig cfg;
  cfg.layers = 2; cfg.hidden = 8; cfg.heads = 2; cfg.head_size = 4; cfg.ffn = 16; cfg.context = 6; cfg.vocab = 11;
  cfg.tied_embeddings = tied;
  return cfg;
}

// `s` with every width size multiplied by kw and layers by kd.
inline vcycle::LevelShape grow(vcycle::LevelShape s, int64_t kw, int64_t kd) {
  for (auto& [name, size] : s.sizes) size *= kw;
  s.layers *= kd;
  return s;
}

// The tensors of a GPT of `cfg` with every entry random (norm gains and biases too), so that no
// tensor is trivially constant.
inline vcycle::TensorMap random_gpt_tensors(const vcycle::GPTConfig& cfg, torch::Dtype dtype = torch::kFloat) {
  vcycle::GPT model(cfg);
  vcycle::TensorMap out;
  for (const auto& [name, t] : vcycle::module_tensors(*model)) out[name] = torch::randn(t.sizes(), dtype);
  return out;
}

// Message of the InputError `fn` throws ("" when it throws nothing).
template <class Fn>
std::string input_error(Fn&& fn) {
  try {
    fn();
  } catch (const vcycle::InputError& e) {
    return e.what();
  }
  return "";
}

inline bool bitwise_equal(const vcycle::TensorMap& a, const vcycle::TensorMap& b, std::string* first_diff = nullptr) {
  if (a.size() != b.size()) {
    if (first_diff) *first_diff = "sizes differ";
    return false;
  }
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end() || t.sizes() != it->second.sizes() || !torch::equal(t, it->second)) {
      if (first_diff) *first_diff = name;
      return false;
    }
  }
  return true;
}

}  // namespace optest
