// Residual add + LayerNorm, forward and backward; see include/vcycle/models/add_layer_norm.h.
// Row sums keep kLanes partial results (row_sums.h), so that the loops vectorise without reassociating.
#include "vcycle/models/add_layer_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "parallel_chunks.h"
#include "row_sums.h"

namespace vcycle {

namespace {

using row_sums::kLanes;
using row_sums::lanes_total;

constexpr int64_t kMaxBlocks = 64;    // row blocks for the weight and bias gradients
constexpr int64_t kMinBlockRows = 32;

// Σ (x[j] − c)²
template <class T>
inline T row_sq_dev(const T* __restrict x, T c, int64_t n) {
  T l[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int i = 0; i < kLanes; ++i) l[i] += (x[j + i] - c) * (x[j + i] - c);
  T s = lanes_total(l);
  for (; j < n; ++j) s += (x[j] - c) * (x[j] - c);
  return s;
}

// Σ a[j]·b[j]
template <class T>
inline T row_dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T l[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int i = 0; i < kLanes; ++i) l[i] += a[j + i] * b[j + i];
  T s = lanes_total(l);
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

struct Blocks {
  int64_t count, size;
};
// Depends on the row count only, never on the thread count.
Blocks row_blocks(int64_t rows) {
  const int64_t size = std::max(kMinBlockRows, (rows + kMaxBlocks - 1) / kMaxBlocks);
  return {std::max<int64_t>(1, (rows + size - 1) / size), size};
}

template <class T>
void forward_kernel(const T* x, const T* r, const T* w, const T* b, T* h, T* y, T* mean, T* rstd, int64_t rows,
                    int64_t d, double eps) {
  parallel_chunks(rows, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* __restrict xi = x + i * d;
      const T* __restrict ri = r + i * d;
      T* __restrict hi = h + i * d;
      T* __restrict yi = y + i * d;
      for (int64_t j = 0; j < d; ++j) hi[j] = xi[j] + ri[j];
      const T mu = row_sums::sum(hi, d) / T(d);
      const T rs = T(1) / std::sqrt(row_sq_dev(hi, mu, d) / T(d) + T(eps));  // biased variance, as LayerNorm
      for (int64_t j = 0; j < d; ++j) yi[j] = (hi[j] - mu) * rs * w[j] + b[j];
      mean[i] = mu;
      rstd[i] = rs;
    }
  });
}

// dh = dh_ext + rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·w and x̂ = (h − mean)·rstd; dw = Σ dy·x̂,
// db = Σ dy. dy or dh_ext may be null (that output was not used).
template <class T>
void backward_kernel(const T* dy, const T* dh_ext, const T* h, const T* w, const T* mean, const T* rstd, T* dh,
                     T* dw, T* db, int64_t rows, int64_t d) {
  const Blocks blocks = row_blocks(rows);
  std::vector<T> part_w(dy ? blocks.count * d : 0), part_b(dy ? blocks.count * d : 0);
  parallel_chunks(blocks.count, [&](int64_t b0, int64_t b1) {
    std::vector<T> xhat(d), g(d);
    for (int64_t blk = b0; blk < b1; ++blk) {
      T* __restrict pw = dy ? part_w.data() + blk * d : nullptr;
      T* __restrict pb = dy ? part_b.data() + blk * d : nullptr;
      if (dy) {
        std::fill(pw, pw + d, T(0));
        std::fill(pb, pb + d, T(0));
      }
      const int64_t end = std::min(rows, (blk + 1) * blocks.size);
      for (int64_t i = blk * blocks.size; i < end; ++i) {
        T* __restrict dhi = dh + i * d;
        if (!dy) {  // only h's own gradient
          for (int64_t j = 0; j < d; ++j) dhi[j] = dh_ext ? dh_ext[i * d + j] : T(0);
          continue;
        }
        const T* __restrict dyi = dy + i * d;
        const T* __restrict hi = h + i * d;
        const T mu = mean[i], rs = rstd[i];
        for (int64_t j = 0; j < d; ++j) {
          xhat[j] = (hi[j] - mu) * rs;
          g[j] = dyi[j] * w[j];
        }
        const T a = row_sums::sum(g.data(), d) / T(d);              // mean(g)
        const T c = row_dot(g.data(), xhat.data(), d) / T(d);  // mean(g·x̂)
        if (dh_ext) {
          const T* __restrict ei = dh_ext + i * d;
          for (int64_t j = 0; j < d; ++j) dhi[j] = ei[j] + rs * (g[j] - a - xhat[j] * c);
        } else {
          for (int64_t j = 0; j < d; ++j) dhi[j] = rs * (g[j] - a - xhat[j] * c);
        }
        for (int64_t j = 0; j < d; ++j) {
          pw[j] += dyi[j] * xhat[j];
          pb[j] += dyi[j];
        }
      }
    }
  });
  if (!dy) return;
  std::fill(dw, dw + d, T(0));
  std::fill(db, db + d, T(0));
  for (int64_t blk = 0; blk < blocks.count; ++blk) {
    for (int64_t j = 0; j < d; ++j) {
      dw[j] += part_w[blk * d + j];
      db[j] += part_b[blk * d + j];
    }
  }
}

torch::ScalarType compute_type(torch::ScalarType t) { return t == torch::kDouble ? torch::kDouble : torch::kFloat; }

struct AddLayerNormFunction : torch::autograd::Function<AddLayerNormFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in,
                                                const torch::Tensor& r_in, const torch::Tensor& w_in,
                                                const torch::Tensor& b_in, double eps) {
    RECORD_FUNCTION("vcycle::add_layer_norm", std::vector<c10::IValue>());
    const auto out_type = torch::promote_types(x_in.scalar_type(), r_in.scalar_type());
    const auto ct = compute_type(out_type);
    const auto x = x_in.to(ct).contiguous(), r = r_in.to(ct).contiguous();
    const auto w = w_in.to(ct).contiguous(), b = b_in.to(ct).contiguous();
    const int64_t d = x.size(-1), rows = d == 0 ? 0 : x.numel() / d;
    auto h = torch::empty_like(x), y = torch::empty_like(x);
    auto mean = torch::empty({rows}, x.options()), rstd = torch::empty({rows}, x.options());
    if (ct == torch::kDouble) {
      forward_kernel<double>(x.data_ptr<double>(), r.data_ptr<double>(), w.data_ptr<double>(), b.data_ptr<double>(),
                             h.data_ptr<double>(), y.data_ptr<double>(), mean.data_ptr<double>(),
                             rstd.data_ptr<double>(), rows, d, eps);
    } else {
      forward_kernel<float>(x.data_ptr<float>(), r.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(),
                            h.data_ptr<float>(), y.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
                            rows, d, eps);
    }
    ctx->save_for_backward({h, w, mean, rstd});
    ctx->saved_data["x_type"] = static_cast<int64_t>(x_in.scalar_type());
    ctx->saved_data["r_type"] = static_cast<int64_t>(r_in.scalar_type());
    ctx->saved_data["w_type"] = static_cast<int64_t>(w_in.scalar_type());
    ctx->saved_data["b_type"] = static_cast<int64_t>(b_in.scalar_type());
    if (out_type != ct) return {h.to(out_type), y.to(out_type)};
    return {h, y};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("vcycle::add_layer_norm_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const auto &h = saved[0], &w = saved[1], &mean = saved[2], &rstd = saved[3];
    const auto ct = h.scalar_type();
    const auto dh_ext = grads[0].defined() ? grads[0].to(ct).contiguous() : torch::Tensor();
    const auto dy = grads[1].defined() ? grads[1].to(ct).contiguous() : torch::Tensor();
    const int64_t d = h.size(-1), rows = d == 0 ? 0 : h.numel() / d;
    auto dh = torch::empty_like(h);
    auto dw = torch::zeros_like(w), db = torch::zeros_like(w);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      backward_kernel<T>(dy.defined() ? dy.data_ptr<T>() : nullptr, dh_ext.defined() ? dh_ext.data_ptr<T>() : nullptr,
                         h.data_ptr<T>(), w.data_ptr<T>(), mean.data_ptr<T>(), rstd.data_ptr<T>(), dh.data_ptr<T>(),
                         dw.data_ptr<T>(), db.data_ptr<T>(), rows, d);
    };
    if (ct == torch::kDouble) run(double()); else run(float());
    auto as = [&](const torch::Tensor& g, const char* key) {
      return g.to(static_cast<torch::ScalarType>(ctx->saved_data[key].toInt()));
    };
    return {as(dh, "x_type"), as(dh, "r_type"), as(dw, "w_type"), as(db, "b_type"), torch::Tensor()};
  }
};

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& x, const torch::Tensor& r,
                                                        const torch::Tensor& weight, const torch::Tensor& bias,
                                                        double eps) {
  TORCH_CHECK(x.sizes() == r.sizes(), "add_layer_norm: x and r must have the same shape, got ", x.sizes(), " and ",
              r.sizes());
  TORCH_CHECK(x.dim() >= 1 && weight.dim() == 1 && bias.dim() == 1 && weight.size(0) == x.size(-1) &&
                  bias.size(0) == x.size(-1),
              "add_layer_norm: weight and bias must be (", x.dim() >= 1 ? x.size(-1) : 0, "), got ", weight.sizes(),
              " and ", bias.sizes());
  TORCH_CHECK(x.device().is_cpu() && r.device().is_cpu() && weight.device().is_cpu() && bias.device().is_cpu(),
              "add_layer_norm: CPU tensors only");
  TORCH_CHECK(x.is_floating_point() && r.is_floating_point(), "add_layer_norm: x and r must be floating point, got ",
              x.scalar_type(), " and ", r.scalar_type());
  const auto out = AddLayerNormFunction::apply(x, r, weight, bias, eps);
  return {out[0], out[1]};
}

}  // namespace vcycle
