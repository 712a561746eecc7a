// Mixed precision: `precision: bf16` runs forward passes under LibTorch's autocast (matmuls and
// linear layers in bfloat16, reductions and the loss in fp32) while parameters, gradients and
// optimizer state stay fp32 — the usual "fp32 master weights" scheme. `fp32` changes nothing.
#pragma once

#include <string>

#include <torch/types.h>

namespace vcycle {

enum class Precision { fp32, bf16 };

// "fp32" | "bf16"; std::invalid_argument listing the valid names otherwise.
Precision parse_precision(const std::string& name);
// The name parse_precision() reads ("fp32", "bf16").
std::string to_string(Precision p);

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
