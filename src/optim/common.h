// Helpers shared by vcycle's optimizers (private to src/optim).
//
// The LibTorch-version seams live here, each behind one helper:
//   state_key()              — the key type of Optimizer::state() (std::string in 1.x, void* in 2.x);
//   restore_group_options()  — recent LibTorch 2.x add_param_group() replaces the options of groups of
//                              optimizers it does not know (ours) by the defaults; we put them back.
// and the fp32 working copies that let every optimizer keep fp32 state for bf16/fp16 parameters.
#pragma once

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/version.h>

namespace vcycle::optim::detail {

// ---- seam 1: the key of Optimizer::state() ------------------------------------------------------

using StateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using StateKey = typename StateMap::key_type;

// LibTorch 1.x keys a parameter's state by its TensorImpl address printed as text (exactly as
// torch/optim/serialize.h builds it on load); 2.x by the address itself. Overloads on the key
// type read off the map, so whichever type this LibTorch uses, the matching one is chosen.
inline std::string state_key_as(c10::TensorImpl* impl, std::string* /*tag*/) {
#if TORCH_VERSION_MAJOR < 2
  return c10::guts::to_string(impl);
#else
  std::ostringstream out;  // what c10::guts::to_string did for pointers
  out << impl;
  return out.str();
#endif
}
inline void* state_key_as(c10::TensorImpl* impl, void** /*tag*/) { return impl; }

inline StateKey state_key(const torch::Tensor& p) {
  return state_key_as(p.unsafeGetTensorImpl(), static_cast<StateKey*>(nullptr));
}

// ---- seam 2: per-group options --------------------------------------------------------------------

// Gives every installed group the options it was constructed with (a clone), or the optimizer's
// defaults where it had none. Needed because newer LibTorch merges a group's options only for its
// own optimizer types and otherwise installs the defaults; harmless on older versions.
template <class Options>
void restore_group_options(std::vector<torch::optim::OptimizerParamGroup>& installed,
                           const std::vector<torch::optim::OptimizerParamGroup>& requested,
                           const torch::optim::OptimizerOptions& defaults, const char* optimizer) {
  TORCH_INTERNAL_ASSERT(installed.size() == requested.size());
  for (size_t i = 0; i < requested.size(); ++i) {
    const torch::optim::OptimizerOptions& src = requested[i].has_options() ? requested[i].options() : defaults;
    TORCH_CHECK(dynamic_cast<const Options*>(&src) != nullptr, optimizer, ": parameter group ", i,
                " has options of another optimizer");
    installed[i].set_options(src.clone());
  }
}

// ---- fp32 working copies ----------------------------------------------------------------------------

// Parameter (and gradient) as fp32: the tensor itself when it already is fp32, else a converted
// copy; commit() writes a copy back in the parameter's dtype.
struct Fp32Param {
  torch::Tensor param;  // the parameter as stored (any floating dtype)
  torch::Tensor w;      // fp32 working values (aliases `param` when it is fp32)
  torch::Tensor g;      // fp32 gradient (aliases the gradient when it is fp32)

  Fp32Param(const torch::Tensor& p, const torch::Tensor& grad)
      : param(p),
        w(p.scalar_type() == torch::kFloat ? p : p.to(torch::kFloat)),
        g(grad.scalar_type() == torch::kFloat ? grad : grad.to(torch::kFloat)) {}
  void commit() {
    if (!w.is_same(param)) param.copy_(w);
  }
  // After a fused kernel wrote the parameter through its data pointer: in-place ATen ops bump the
  // version counter that autograd checks, raw writes do not.
  void commit_raw() {
    if (w.is_same(param))
      param.unsafeGetTensorImpl()->bump_version();
    else
      param.copy_(w);
  }
};

// Checks a gradient before an update: dense and of the parameter's shape.
inline void check_grad(const torch::Tensor& p, const torch::Tensor& grad, const char* optimizer) {
  TORCH_CHECK(!grad.is_sparse(), optimizer, " does not support sparse gradients");
  TORCH_CHECK(grad.sizes() == p.sizes(), optimizer, ": gradient shape ", grad.sizes(),
              " differs from parameter shape ", p.sizes());
  TORCH_CHECK(p.is_floating_point(), optimizer, ": parameters must be floating point, got ", p.scalar_type());
}

// A state tensor on the parameter's device (a state loaded from an archive arrives on the CPU).
inline void to_device_of(torch::Tensor& state, const torch::Tensor& p) {
  if (state.defined() && state.device() != p.device()) state = state.to(p.device());
}

// Bytes held by a (possibly undefined) state tensor.
inline int64_t tensor_bytes(const torch::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

inline bool finite(double x) { return std::isfinite(x); }

// rsqrt(x / mean(x)) with the mean over the last dim (the factored row statistic's normalisation).
inline torch::Tensor relative_rsqrt(const torch::Tensor& x) { return (x / x.mean(-1, /*keepdim=*/true)).rsqrt_(); }

}  // namespace vcycle::optim::detail
