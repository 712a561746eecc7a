// Pieces the built-in families (GPT, BERT, ViT) share besides their attention (attention.h): the GELU
// MLP, and the initial value of a norm gain or a bias.
//
// MLP parameter names, as the parameter maps expect them:
//   fc.{weight (f, d), bias (f)}   proj.{weight (d, f), bias (d)}
#pragma once

#include <cstdint>
#include <string>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace vcycle {

// proj(GELU(fc(x))): d -> f -> d.
struct MLPImpl : torch::nn::Cloneable<MLPImpl> {
  MLPImpl(int64_t hidden, int64_t ffn);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t hidden, ffn;
  torch::nn::Linear fc{nullptr}, proj{nullptr};
};
TORCH_MODULE(MLP);

// Initialises a parameter of fewer than two dims the way every built-in family does: a LayerNorm gain
// (its name ends in `weight`) to 1, anything else (a bias) to 0. Draws nothing from the RNG, so it
// does not shift the random values of the parameters after it.
void init_gain_or_bias(const std::string& name, torch::Tensor& p);

}  // namespace vcycle
