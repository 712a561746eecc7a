// The process-wide choice of CPU kernels; see include/vcycle/models/cpu_kernels.h.
#include "vcycle/models/cpu_kernels.h"

#include <atomic>
#include <cstdlib>

#include "vcycle/core/errors.h"

namespace vcycle {

namespace {

constexpr const char* kKernelsEnv = "VCYCLE_KERNELS";

// -1: not read from the environment yet; else a CpuKernels value.
std::atomic<int> kernels_switch{-1};

}  // namespace

CpuKernels parse_cpu_kernels(const std::string& name, const std::string& what) {
  if (name == "fused") return CpuKernels::fused;
  if (name == "aten") return CpuKernels::aten;
  throw InputError(what + ": unknown CPU kernels '" + name + "' (valid: fused, aten)");
}

std::string to_string(CpuKernels kernels) { return kernels == CpuKernels::fused ? "fused" : "aten"; }

void set_cpu_kernels(CpuKernels kernels) { kernels_switch.store(static_cast<int>(kernels)); }

CpuKernels cpu_kernels() {
  int k = kernels_switch.load();
  if (k < 0) {
    const char* env = std::getenv(kKernelsEnv);
    const auto from_env = env == nullptr || *env == '\0' ? CpuKernels::fused : parse_cpu_kernels(env, kKernelsEnv);
    int unset = -1;  // a set_cpu_kernels() that came first wins
    kernels_switch.compare_exchange_strong(unset, static_cast<int>(from_env));
    k = kernels_switch.load();
  }
  return static_cast<CpuKernels>(k);
}

bool fused_cpu_kernels_take(const torch::Tensor& t, bool with_bf16) {
  const auto st = t.scalar_type();
  return t.device().is_cpu() && (st == torch::kFloat || st == torch::kDouble || (with_bf16 && st == torch::kBFloat16)) &&
         cpu_kernels() == CpuKernels::fused;
}

}  // namespace vcycle
