// Fused CPU GELU: the exact (erf) GELU, x·Φ(x), and its derivative in one vectorised pass each.
//
//   auto y = vcycle::fused_gelu(x);  // differentiable in x
//
// Float: Φ from erf by Abramowitz & Stegun 7.1.26 (|erf error| ≤ 1.5e-7), the approximation
// LibTorch's own vectorised float GELU uses, with vcycle's vectorised exp; the backward reuses the
// forward's e^(−x²/2) for the density, one exp per element where LibTorch computes two. Double:
// std::erf and std::exp, so that the fp64 result equals torch::gelu's to rounding. BFloat16: widened
// to float, computed as float, rounded to nearest. Other dtypes and non-CPU tensors are refused.
#pragma once

#include <torch/types.h>

namespace vcycle {

torch::Tensor fused_gelu(const torch::Tensor& x);

// The GELU every built-in model calls: fused_gelu for fp32, fp64 and bf16 CPU tensors while the fused
// CPU kernels are on (cpu_kernels.h), else torch::gelu.
torch::Tensor gelu(const torch::Tensor& x);

}  // namespace vcycle
