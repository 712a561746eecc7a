// Which kernels the built-in models run on CPU tensors: vcycle's fused kernels (fused_attention.h,
// fused_gelu.h) or LibTorch's ops, for A/B measurements and as an escape hatch. Process-wide; the
// first value comes from the environment variable VCYCLE_KERNELS (fused | aten; unset = fused), read
// on first use.
#pragma once

#include <string>

#include <torch/types.h>

namespace vcycle {

enum class CpuKernels {
  fused,  // fused_attention (tiled, no T × T matrix) and fused_gelu
  aten,   // LibTorch's ops, as on other devices
};

void set_cpu_kernels(CpuKernels kernels);
CpuKernels cpu_kernels();  // InputError naming VCYCLE_KERNELS if it holds another value
// "fused" or "aten"; InputError listing the valid names otherwise. `what` names the source in the message.
CpuKernels parse_cpu_kernels(const std::string& name, const std::string& what);
std::string to_string(CpuKernels kernels);

// Whether a fused kernel takes `t`: a float or double CPU tensor while the fused kernels are on, and
// a bfloat16 one (a `precision: bf16` run) for the kernels that ask (`with_bf16`). The GELU and
// SelfAttention's fused_attention_qkv do; attention() on separate q, k, v in bf16 stays on
// LibTorch's ops, whose bf16 GEMMs match the kernel's float arithmetic at T = 128 once the kernel's
// strided conversions are counted (README, "Fused CPU kernels").
bool fused_cpu_kernels_take(const torch::Tensor& t, bool with_bf16 = false);

}  // namespace vcycle
