// Mixed precision: `precision: bf16` runs forward passes under LibTorch's autocast (matmuls and
// linear layers in bfloat16, reductions and the loss in fp32) while parameters, gradients and
// optimizer state stay fp32 — the usual "fp32 master weights" scheme. `fp32` changes nothing.
// `auto`, the default, is bf16 on a CPU with native bf16 arithmetic and fp32 everywhere else.
#pragma once

#include <string>

#include <torch/types.h>

namespace vcycle {

enum class Precision { fp32, bf16 };

// "fp32" | "bf16"; std::invalid_argument listing the valid names otherwise.
Precision parse_precision(const std::string& name);
// The name parse_precision() reads ("fp32", "bf16").
std::string to_string(Precision p);

// What `precision: auto` means on a device. bf16 on a CPU that does bf16 dot products natively
// (avx512_bf16 or amx_bf16), where the default GPT trains much faster in bf16 and ends within 1% of
// fp32's validation loss (measured in README "CPU speed"). fp32 on other CPUs, where bf16 arithmetic
// is emulated and slower, and on GPUs, where the choice stays the user's (set bf16 explicitly).
Precision auto_precision(bool device_is_cpu);

// "auto" through auto_precision(), else parse_precision(). std::invalid_argument for other names.
Precision resolve_precision(const std::string& name, bool device_is_cpu);

// Autocast on `device` for the guard's lifetime (forward passes only: call backward() outside).
// Restores the previous autocast state, so guards nest.
class AutocastGuard {
 public:
  AutocastGuard(Precision precision, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

}  // namespace vcycle
