// Fused CPU GELU, forward and backward; see include/vcycle/models/fused_gelu.h.
//
// Per element, with z = |x|/√2, t = 1/(1 + p·z) and e = e^(−z²) = e^(−x²/2):
//   Q = ½·poly(t)·e          (½·erfc(z), Abramowitz & Stegun 7.1.26)
//   Φ(x) = 1 − Q for x ≥ 0, Q for x < 0,  GELU(x) = x·Φ(x)
//   GELU'(x) = Φ(x) + x·φ(x),  φ(x) = e / √(2π)
// so the density needs no exp of its own. Q is formed without the cancellation of 1 − erf for
// negative x. Each pass is one loop of plain arithmetic that the compiler vectorises; the clamp of
// −x²/2 at −87 (where e underflows) is its own loop, as a max in the same loop becomes a branch.
#include "vcycle/models/fused_gelu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "vcycle/core/parallel_chunks.h"
#include "vcycle/models/cpu_kernels.h"
#include "vec_math.h"

namespace vcycle {

namespace {

constexpr int64_t kBlock = 256;       // elements per inner pass (the e^(−x²/2) buffer)
constexpr int64_t kChunk = 1 << 15;   // elements per parallel chunk: below this, one thread

// Φ(x) and φ(x) for a block of n ≤ kBlock floats; phi may be null (forward).
VCYCLE_INLINE void normal_cdf_pdf(const float* __restrict x, int64_t n, float* __restrict cdf, float* __restrict pdf) {
  float e[kBlock];
  for (int64_t j = 0; j < n; ++j) e[j] = std::max(-0.5f * x[j] * x[j], -87.0f);
  for (int64_t j = 0; j < n; ++j) {
    const float ez = vec_math::exp_nonpositive(e[j]);
    const float z = std::fabs(x[j]) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    const float q = 0.5f * poly * ez;
    cdf[j] = x[j] >= 0.0f ? 1.0f - q : q;
    e[j] = ez;
  }
  if (pdf != nullptr)
    for (int64_t j = 0; j < n; ++j) pdf[j] = e[j] * 0.39894228040143268f;
}

// The kernels compute in float; bf16 (a `precision: bf16` run's activations) is widened a block at
// a time and rounded back. LibTorch 1.13's own bf16 GELU backward is a scalar loop (4 ms for 2M
// elements).
VCYCLE_INLINE float widen(float v) { return v; }
VCYCLE_INLINE float widen(uint16_t v) { return vec_math::bf16_to_float(v); }
template <class T>
VCYCLE_INLINE T narrow(float v) {
  if constexpr (std::is_same_v<T, uint16_t>) return vec_math::float_to_bf16(v);
  else return v;
}

template <class T>
VCYCLE_INLINE void gelu_forward_impl(const T* x, T* y, int64_t n) {
  float xf[kBlock], cdf[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    for (int64_t j = 0; j < m; ++j) xf[j] = widen(x[b + j]);
    normal_cdf_pdf(xf, m, cdf, nullptr);
    for (int64_t j = 0; j < m; ++j) y[b + j] = narrow<T>(xf[j] * cdf[j]);
  }
}

template <class T>
VCYCLE_INLINE void gelu_backward_impl(const T* dy, const T* x, T* dx, int64_t n) {
  float xf[kBlock], cdf[kBlock], pdf[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    for (int64_t j = 0; j < m; ++j) xf[j] = widen(x[b + j]);
    normal_cdf_pdf(xf, m, cdf, pdf);
    for (int64_t j = 0; j < m; ++j) dx[b + j] = narrow<T>(widen(dy[b + j]) * (cdf[j] + xf[j] * pdf[j]));
  }
}

VCYCLE_TARGET_CLONES void gelu_forward(const float* x, float* y, int64_t n) { gelu_forward_impl(x, y, n); }
VCYCLE_TARGET_CLONES void gelu_forward(const uint16_t* x, uint16_t* y, int64_t n) { gelu_forward_impl(x, y, n); }
VCYCLE_TARGET_CLONES void gelu_backward(const float* dy, const float* x, float* dx, int64_t n) {
  gelu_backward_impl(dy, x, dx, n);
}
VCYCLE_TARGET_CLONES void gelu_backward(const uint16_t* dy, const uint16_t* x, uint16_t* dx, int64_t n) {
  gelu_backward_impl(dy, x, dx, n);
}

// Double: the library's erf and exp, as LibTorch's double GELU computes it.
void gelu_forward(const double* x, double* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = 0.5 * x[j] * (1.0 + std::erf(x[j] * M_SQRT1_2));
}

void gelu_backward(const double* dy, const double* x, double* dx, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const double cdf = 0.5 * (1.0 + std::erf(x[j] * M_SQRT1_2));
    const double pdf = std::exp(-0.5 * x[j] * x[j]) * (M_2_SQRTPI * M_SQRT1_2 * 0.5);
    dx[j] = dy[j] * (cdf + x[j] * pdf);
  }
}

// Runs f(begin, end) over [0, n) in chunks of at least kChunk elements on LibTorch's threads.
template <class F>
void over_chunks(int64_t n, F f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  parallel_chunks(chunks, [&](int64_t c0, int64_t c1) {
    const int64_t begin = c0 * kChunk, end = std::min(n, c1 * kChunk);
    f(begin, end);
  });
}

// Pointers of a tensor's data as the kernels take them: bf16 as its 16 bits.
template <class T>
T* data_of(const torch::Tensor& x) {
  if constexpr (std::is_same_v<T, uint16_t>) return reinterpret_cast<uint16_t*>(x.data_ptr<at::BFloat16>());
  else return x.data_ptr<T>();
}

// f(T tag) with T the kernels' element type for x's dtype (float, double or uint16_t for bf16).
template <class F>
void by_dtype(const torch::Tensor& x, F f) {
  switch (x.scalar_type()) {
    case torch::kDouble: return f(double{});
    case torch::kBFloat16: return f(uint16_t{});
    default: return f(float{});
  }
}

torch::Tensor forward_kernel(const torch::Tensor& x) {
  RECORD_FUNCTION("vcycle::fused_gelu", std::vector<c10::IValue>());  // for `bench train --profile`
  auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
  by_dtype(x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = data_of<T>(x);
    T* py = data_of<T>(y);
    over_chunks(x.numel(), [&](int64_t b, int64_t e) { gelu_forward(px + b, py + b, e - b); });
  });
  return y;
}

torch::Tensor backward_kernel(const torch::Tensor& dy, const torch::Tensor& x) {
  RECORD_FUNCTION("vcycle::fused_gelu_backward", std::vector<c10::IValue>());
  auto dx = torch::empty_like(x, at::MemoryFormat::Contiguous);
  by_dtype(x, [&](auto tag) {
    using T = decltype(tag);
    const T *pdy = data_of<T>(dy), *px = data_of<T>(x);
    T* pdx = data_of<T>(dx);
    over_chunks(x.numel(), [&](int64_t b, int64_t e) { gelu_backward(pdy + b, px + b, pdx + b, e - b); });
  });
  return dx;
}

struct FusedGeluFunction : torch::autograd::Function<FusedGeluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in) {
    const auto x = x_in.contiguous();
    ctx->save_for_backward({x});
    return forward_kernel(x);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto x = ctx->get_saved_variables()[0];
    return {backward_kernel(grads[0].to(x.scalar_type()).contiguous(), x)};
  }
};

}  // namespace

torch::Tensor fused_gelu(const torch::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu(), "fused_gelu: CPU tensors only, got one on ", x.device());
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble ||
                  x.scalar_type() == torch::kBFloat16,
              "fused_gelu: dtype must be float, double or bfloat16, got ", x.scalar_type(), " (shape ", x.sizes(), ")");
  return FusedGeluFunction::apply(x);
}

torch::Tensor gelu(const torch::Tensor& x) {
  return fused_cpu_kernels_take(x, /*with_bf16=*/true) ? fused_gelu(x) : torch::gelu(x);
}

}  // namespace vcycle
