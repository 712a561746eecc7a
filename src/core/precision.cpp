// Mixed precision; see include/vcycle/core/precision.h.
#include "vcycle/core/precision.h"

#include <stdexcept>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "vcycle/core/peak_flops.h"

namespace vcycle {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw std::invalid_argument("unknown precision '" + name + "' (valid: fp32, bf16)");
}

std::string to_string(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

Precision auto_precision(bool device_is_cpu) {
  return device_is_cpu && cpu_has_bf16() ? Precision::bf16 : Precision::fp32;
}

Precision resolve_precision(const std::string& name, bool device_is_cpu) {
  if (name == "auto") return auto_precision(device_is_cpu);
  if (name == "fp32" || name == "bf16") return parse_precision(name);
  throw std::invalid_argument("unknown precision '" + name + "' (valid: auto, fp32, bf16)");
}

// LibTorch 2.4 replaced the per-device autocast functions with ones taking the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
namespace {
at::DeviceType type_of(bool cuda) { return cuda ? at::kCUDA : at::kCPU; }
bool autocast_enabled(bool cuda) { return at::autocast::is_autocast_enabled(type_of(cuda)); }
void set_autocast_enabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(type_of(cuda), on); }
at::ScalarType autocast_dtype(bool cuda) { return at::autocast::get_autocast_dtype(type_of(cuda)); }
void set_autocast_dtype(bool cuda, at::ScalarType t) { at::autocast::set_autocast_dtype(type_of(cuda), t); }
}  // namespace
#else
namespace {
bool autocast_enabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void set_autocast_enabled(bool cuda, bool on) {
  if (cuda) at::autocast::set_enabled(on);
  else at::autocast::set_cpu_enabled(on);
}
at::ScalarType autocast_dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_autocast_dtype(bool cuda, at::ScalarType t) {
  if (cuda) at::autocast::set_autocast_gpu_dtype(t);
  else at::autocast::set_autocast_cpu_dtype(t);
}
}  // namespace
#endif

AutocastGuard::AutocastGuard(Precision precision, const torch::Device& device) {
  if (precision == Precision::fp32) return;
  active_ = true;
  cuda_ = device.is_cuda();
  was_enabled_ = autocast_enabled(cuda_);
  was_dtype_ = autocast_dtype(cuda_);
  set_autocast_dtype(cuda_, at::kBFloat16);
  set_autocast_enabled(cuda_, true);
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  set_autocast_enabled(cuda_, was_enabled_);
  set_autocast_dtype(cuda_, was_dtype_);
  // Autocast caches bf16 copies of the weights while enabled; they must not outlive the step.
  if (!was_enabled_) at::autocast::clear_cache();
}

}  // namespace vcycle
