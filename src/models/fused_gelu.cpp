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

VCYCLE_TARGET_CLONES void gelu_forward_f32(const float* x, float* y, int64_t n) {
  float cdf[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    normal_cdf_pdf(x + b, m, cdf, nullptr);
    for (int64_t j = 0; j < m; ++j) y[b + j] = x[b + j] * cdf[j];
  }
}

VCYCLE_TARGET_CLONES void gelu_backward_f32(const float* dy, const float* x, float* dx, int64_t n) {
  float cdf[kBlock], pdf[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    normal_cdf_pdf(x + b, m, cdf, pdf);
    for (int64_t j = 0; j < m; ++j) dx[b + j] = dy[b + j] * (cdf[j] + x[b + j] * pdf[j]);
  }
}

// Double: the library's erf and exp, as LibTorch's double GELU computes it.
void gelu_forward_f64(const double* x, double* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = 0.5 * x[j] * (1.0 + std::erf(x[j] * M_SQRT1_2));
}

void gelu_backward_f64(const double* dy, const double* x, double* dx, int64_t n) {
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

torch::Tensor forward_kernel(const torch::Tensor& x) {
  RECORD_FUNCTION("vcycle::fused_gelu", std::vector<c10::IValue>());  // for `bench train --profile`
  auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.numel();
  if (x.scalar_type() == torch::kDouble) {
    const double* px = x.data_ptr<double>();
    double* py = y.data_ptr<double>();
    over_chunks(n, [&](int64_t b, int64_t e) { gelu_forward_f64(px + b, py + b, e - b); });
  } else {
    const float* px = x.data_ptr<float>();
    float* py = y.data_ptr<float>();
    over_chunks(n, [&](int64_t b, int64_t e) { gelu_forward_f32(px + b, py + b, e - b); });
  }
  return y;
}

torch::Tensor backward_kernel(const torch::Tensor& dy, const torch::Tensor& x) {
  RECORD_FUNCTION("vcycle::fused_gelu_backward", std::vector<c10::IValue>());
  auto dx = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.numel();
  if (x.scalar_type() == torch::kDouble) {
    const double *pdy = dy.data_ptr<double>(), *px = x.data_ptr<double>();
    double* pdx = dx.data_ptr<double>();
    over_chunks(n, [&](int64_t b, int64_t e) { gelu_backward_f64(pdy + b, px + b, pdx + b, e - b); });
  } else {
    const float *pdy = dy.data_ptr<float>(), *px = x.data_ptr<float>();
    float* pdx = dx.data_ptr<float>();
    over_chunks(n, [&](int64_t b, int64_t e) { gelu_backward_f32(pdy + b, px + b, pdx + b, e - b); });
  }
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
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble,
              "fused_gelu: dtype must be float or double, got ", x.scalar_type(), " (shape ", x.sizes(), ")");
  return FusedGeluFunction::apply(x);
}

torch::Tensor gelu(const torch::Tensor& x) {
  return fused_cpu_kernels_take(x) ? fused_gelu(x) : torch::gelu(x);
}

}  // namespace vcycle
