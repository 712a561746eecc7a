// Residual add and LayerNorm in one pass: h = x + r, y = LayerNorm(h)·weight + bias over the last
// dim — a pre-LN block's `h = x + attn(...)` then `ln2(h)`.
//
//   auto [h, y] = vcycle::add_layer_norm(x, r, ln->weight, ln->bias, 1e-5);  // both differentiable
//
// Forward reads x and r once and writes h and y; backward reads dy, h and dh (the gradient h gets
// from its other uses) once per row and writes one gradient for x and r, plus weight's and bias'.
// The per-row mean and 1/std are kept from the forward. CPU tensors; float and double computed in
// their own type, BFloat16 and Half in float (results in the promoted input dtype). The weight and
// bias gradients are summed over fixed row blocks in block order: the same on any thread count.
#pragma once

#include <tuple>

#include <torch/types.h>

namespace vcycle {

std::tuple<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& x, const torch::Tensor& r,
                                                        const torch::Tensor& weight, const torch::Tensor& bias,
                                                        double eps);

}  // namespace vcycle
