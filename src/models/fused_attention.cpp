// Fused CPU attention, forward and backward; see include/vcycle/models/fused_attention.h.
//
// Every product here is a small row-major GEMM, C (+)= A·B with B's rows contiguous, done by one
// register-blocked kernel (gemm_nn): it broadcasts an entry of A and adds it times a contiguous row
// of B to a block of accumulators, a loop the compiler vectorises without reassociating sums. To
// have B in that form, kᵀ and vᵀ are transposed once per head. The hot functions are compiled for
// x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline, chosen at load time, so the binary
// runs on any x86-64 CPU and uses the wide units where they exist. Against the other option, at::mm
// on tile views, a 64×64×64 product took 5.5-6.1 µs here (86-95 GFLOP/s on one core of the
// development machine, AVX-512 clone) and at::mm_out / addmm_ on from_blob views 6.7-7.6 µs
// (dispatch and view overhead), measured 2026-12-02 in alternating rounds.
#include "vcycle/models/fused_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "vcycle/core/parallel_chunks.h"
#include "vec_math.h"

namespace vcycle {

namespace {

constexpr int kLanes = 16;  // partial results of a row reduction (row_max, row_sum)

constexpr int64_t kTileQ = 64;  // query rows per tile
constexpr int64_t kTileK = 64;  // keys per tile
constexpr int kRows = 4;        // gemm_nn: rows of C per register block

// ---- small GEMM ----------------------------------------------------------------------------------

// C[R × w] (+)= A[R × k]·B[k × w], w = W unless !kFixed. With W and R fixed the accumulators are a
// block of registers.
template <class T, int R, int W, bool kFixed>
VCYCLE_INLINE void gemm_block(int64_t w, int64_t k, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                              int64_t ldc, bool accumulate) {
  T acc[R][W];
  const int64_t width = kFixed ? W : w;
  for (int r = 0; r < R; ++r)
    for (int64_t j = 0; j < width; ++j) acc[r][j] = accumulate ? C[r * ldc + j] : T(0);
  for (int64_t p = 0; p < k; ++p) {
    const T* __restrict b = B + p * ldb;
    for (int r = 0; r < R; ++r) {
      const T a = A[r * lda + p];
      for (int64_t j = 0; j < width; ++j) acc[r][j] += a * b[j];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int64_t j = 0; j < width; ++j) C[r * ldc + j] = acc[r][j];
}

template <class T, int R>
VCYCLE_INLINE void gemm_rows(int64_t n, int64_t k, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                             int64_t ldc, bool accumulate) {
  constexpr int W = 128 / sizeof(T);  // 32 floats, 16 doubles
  int64_t j = 0;
  for (; j + W <= n; j += W) gemm_block<T, R, W, true>(W, k, A, lda, B + j, ldb, C + j, ldc, accumulate);
  if (j < n) gemm_block<T, R, W, false>(n - j, k, A, lda, B + j, ldb, C + j, ldc, accumulate);
}

// The part of C = A·B that a causal tile needs, per block of rows [i, i + R): all of it, or only
// columns below i + R + off (the scores of queries i.. against keys), or inner indices below
// i + R + off (weights times values: the weights are 0 beyond), or inner indices from i + off (keys
// i.. gathering from the queries that see them). It spares the masked half of the diagonal tiles.
enum class Band { all, cols_below, inner_below, inner_from };

// Rows [i, i + R) of gemm_nn.
template <class T, int R>
VCYCLE_INLINE void gemm_band_rows(int64_t i, int64_t n, int64_t k, const T* A, int64_t lda, const T* B, int64_t ldb,
                                  T* C, int64_t ldc, bool accumulate, Band band, int64_t off) {
  int64_t nn = n, k0 = 0, k1 = k;
  constexpr int64_t W = 128 / sizeof(T);  // gemm_rows' block width: whole blocks are faster than fewer columns
  if (band == Band::cols_below) nn = std::clamp<int64_t>((i + R + off + W - 1) / W * W, 0, n);
  if (band == Band::inner_below) k1 = std::clamp<int64_t>(i + R + off, 0, k);
  if (band == Band::inner_from) k0 = std::clamp<int64_t>(i + off, 0, k);
  if (nn > 0) gemm_rows<T, R>(nn, k1 - k0, A + i * lda + k0, lda, B + k0 * ldb, ldb, C + i * ldc, ldc, accumulate);
}

// C[m × n] = (accumulate ? C : 0) + A[m × k]·B[k × n], all row-major with leading dimensions; with a
// band, the entries outside it are left undefined (callers mask them).
template <class T>
VCYCLE_INLINE void gemm_nn(int64_t m, int64_t n, int64_t k, const T* A, int64_t lda, const T* B, int64_t ldb,
                           T* C, int64_t ldc, bool accumulate, Band band = Band::all, int64_t off = 0) {
  int64_t i = 0;
  for (; i + kRows <= m; i += kRows) gemm_band_rows<T, kRows>(i, n, k, A, lda, B, ldb, C, ldc, accumulate, band, off);
  for (; i < m; ++i) gemm_band_rows<T, 1>(i, n, k, A, lda, B, ldb, C, ldc, accumulate, band, off);
}

// dst[cols × rows] = src[rows × cols]ᵀ (src leading dimension lds, dst ldd).
template <class T>
VCYCLE_INLINE void transpose(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst, int64_t ldd) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
}

// ---- exp -----------------------------------------------------------------------------------------

// x[j] = e^(x[j] − shift) for the softmax weights, arguments ≤ 0. Below −87 it gives about e^−87
// instead of a smaller number, which is 0 next to the row's largest weight of 1. The clamp is a loop
// of its own: in the same loop GCC 12 turns it into a branch and vectorises neither.
VCYCLE_INLINE void exp_weights(float* __restrict x, int64_t n, float shift) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::max(x[j] - shift, -87.0f);
  for (int64_t j = 0; j < n; ++j) x[j] = vec_math::exp_nonpositive(x[j]);
}
VCYCLE_INLINE void exp_weights(double* __restrict x, int64_t n, double shift) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::exp(x[j] - shift);
}

// ---- row reductions ------------------------------------------------------------------------------

// Row reductions in kLanes partial results, combined in a fixed order, so that the loops vectorise
// without reassociating (the compiler may not reorder a single running sum).

// Max of x[0 .. n).
template <class T>
VCYCLE_INLINE T row_max(const T* x, int64_t n) {
  T m = x[0];
  int64_t j = 0;
  if (n >= kLanes) {
    T lanes[kLanes];
    for (int l = 0; l < kLanes; ++l) lanes[l] = x[l];
    for (j = kLanes; j + kLanes <= n; j += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] = std::max(lanes[l], x[j + l]);
    for (int l = 0; l < kLanes; ++l) m = std::max(m, lanes[l]);
  }
  for (; j < n; ++j) m = std::max(m, x[j]);
  return m;
}

// Σ x[0 .. n): the lanes' sums added up lane 0 first.
template <class T>
VCYCLE_INLINE T row_sum(const T* __restrict x, int64_t n) {
  T l[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int i = 0; i < kLanes; ++i) l[i] += x[j + i];
  T s = 0;
  for (int i = 0; i < kLanes; ++i) s += l[i];
  for (; j < n; ++j) s += x[j];
  return s;
}

// ---- shapes --------------------------------------------------------------------------------------

template <class T>
struct Problem {
  int64_t heads = 0;  // B·H
  int64_t t = 0;      // sequence length
  int64_t h = 0;      // head size
  bool causal = false;
  T scale = 0;        // 1 / sqrt(h)
  int64_t tiles() const { return (t + kTileQ - 1) / kTileQ; }
  // Keys a query row i may see: 0 .. key_end(i) - 1.
  int64_t key_end(int64_t i) const { return causal ? i + 1 : t; }
};

// A (B, H, T, h) tensor with a contiguous last dim and any other strides: q, k and v are views of
// the qkv projection, read in place, and the output and the q, k, v gradients may be written into
// (B, T, H, h) layouts the same way. Head bh's rows start at head(bh), `row` apart.
template <class P>  // const T* to read, T* to write
struct RowsOf {
  P data = nullptr;
  int64_t heads = 1;       // H
  int64_t sb = 0, sh = 0;  // strides of B and H
  int64_t row = 0;         // stride of T
  P head(int64_t bh) const { return data + (bh / heads) * sb + (bh % heads) * sh; }
};
template <class T>
using Rows = RowsOf<const T*>;
template <class T>
using OutRows = RowsOf<T*>;

// ---- forward -------------------------------------------------------------------------------------

template <class T>
struct ForwardArgs {
  Problem<T> p;
  Rows<T> q;
  const T* kt;  // (B·H, h, T): kᵀ per head, contiguous
  Rows<T> v;
  OutRows<T> out;
  T* lse;       // (B·H, T): logsumexp of each row's scaled scores
};

// Scratch of one forward tile: the scaled queries, the scores, the output accumulator, row max and sum.
template <class T>
struct ForwardScratch {
  std::vector<T> qs, s, o, m, l;
  explicit ForwardScratch(int64_t h)
      : qs(kTileQ * h), s(kTileQ * kTileK), o(kTileQ * h), m(kTileQ), l(kTileQ) {}
};

// One query tile of one head: the online softmax over its key tiles.
template <class T>
VCYCLE_INLINE void forward_tile_impl(const ForwardArgs<T>& a, int64_t item, ForwardScratch<T>& w) {
  const Problem<T>& p = a.p;
  const int64_t h = p.h, t = p.t;
  const int64_t head = item / p.tiles(), i0 = (item % p.tiles()) * kTileQ;
  const int64_t rows = std::min(kTileQ, t - i0);
  const T* q = a.q.head(head) + i0 * a.q.row;
  const T* kt = a.kt + head * h * t;
  const T* v = a.v.head(head);
  const int64_t vrow = a.v.row;
  T* __restrict qs = w.qs.data();
  T* __restrict s = w.s.data();
  T* __restrict o = w.o.data();
  T* m = w.m.data();
  T* l = w.l.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t d = 0; d < h; ++d) qs[r * h + d] = q[r * a.q.row + d] * p.scale;
  std::fill(o, o + rows * h, T(0));
  std::fill(m, m + rows, -std::numeric_limits<T>::infinity());
  std::fill(l, l + rows, T(0));
  const int64_t kend = p.key_end(i0 + rows - 1);  // keys any row of the tile sees
  for (int64_t j0 = 0; j0 < kend; j0 += kTileK) {
    const int64_t cols = std::min(kTileK, kend - j0);
    const Band below = p.causal ? Band::cols_below : Band::all;
    const Band inner = p.causal ? Band::inner_below : Band::all;
    gemm_nn(rows, cols, h, qs, h, kt + j0, t, s, kTileK, false, below, i0 - j0);  // s = qs·kᵀ
    for (int64_t r = 0; r < rows; ++r) {
      T* __restrict sr = s + r * kTileK;
      const int64_t valid = std::min(cols, p.key_end(i0 + r) - j0);  // the rest is the row's future
      if (valid <= 0) {
        std::fill(sr, sr + cols, T(0));
        continue;
      }
      const T m_new = std::max(m[r], row_max(sr, valid));
      const T alpha = std::exp(m[r] - m_new);  // rescales what earlier key tiles accumulated
      exp_weights(sr, valid, m_new);
      std::fill(sr + valid, sr + cols, T(0));
      l[r] = l[r] * alpha + row_sum(sr, valid);
      m[r] = m_new;
      if (alpha != T(1)) {
        T* __restrict orow = o + r * h;
        for (int64_t d = 0; d < h; ++d) orow[d] *= alpha;
      }
    }
    gemm_nn(rows, h, cols, s, kTileK, v + j0 * vrow, vrow, o, h, true, inner, i0 - j0);  // o += p·v
  }
  T* out = a.out.head(head) + i0 * a.out.row;
  T* lse = a.lse + head * t + i0;
  for (int64_t r = 0; r < rows; ++r) {
    const T inv = T(1) / l[r];
    for (int64_t d = 0; d < h; ++d) out[r * a.out.row + d] = o[r * h + d] * inv;
    lse[r] = m[r] + std::log(l[r]);
  }
}

VCYCLE_TARGET_CLONES void forward_tile(const ForwardArgs<float>& a, int64_t item, ForwardScratch<float>& w) {
  forward_tile_impl(a, item, w);
}
VCYCLE_TARGET_CLONES void forward_tile(const ForwardArgs<double>& a, int64_t item, ForwardScratch<double>& w) {
  forward_tile_impl(a, item, w);
}

// ---- backward ------------------------------------------------------------------------------------

template <class T>
struct BackwardArgs {
  Problem<T> p;
  Rows<T> q, k;
  const T* kt;   // (B·H, h, T), contiguous
  const T* vt;   // (B·H, h, T), contiguous
  Rows<T> out;   // the forward's output
  const T* lse;  // (B·H, T)
  Rows<T> dout;
  OutRows<T> dq, dk, dv;
};

template <class T>
struct BackwardScratch {
  std::vector<T> qs, delta, s, dp, st, dkacc, dvacc;
  BackwardScratch(int64_t t, int64_t h)
      : qs(t * h), delta(t), s(kTileQ * kTileK), dp(kTileQ * kTileK), st(kTileK * kTileQ), dkacc(kTileK * h),
        dvacc(kTileK * h) {}
};

// One head: for each key tile, walk the query tiles that see it; dk and dv of the key tile are
// accumulated in scratch, dq of every query row in place.
template <class T>
VCYCLE_INLINE void backward_head_impl(const BackwardArgs<T>& a, int64_t head, BackwardScratch<T>& w) {
  const Problem<T>& p = a.p;
  const int64_t h = p.h, t = p.t;
  const int64_t base = head * t * h;  // of kᵀ and vᵀ
  const T* q = a.q.head(head);
  const T* k = a.k.head(head);
  const T* kt = a.kt + base;
  const T* vt = a.vt + base;
  const T* out = a.out.head(head);
  const T* dout = a.dout.head(head);
  const int64_t krow = a.k.row, drow = a.dout.row, orow = a.out.row;
  const T* lse = a.lse + head * t;
  T* dq = a.dq.head(head);
  T* dk = a.dk.head(head);
  T* dv = a.dv.head(head);
  const int64_t dqrow = a.dq.row, dkrow = a.dk.row, dvrow = a.dv.row;
  T* __restrict qs = w.qs.data();
  T* __restrict delta = w.delta.data();
  T* __restrict s = w.s.data();
  T* __restrict dp = w.dp.data();
  T* __restrict st = w.st.data();
  for (int64_t i = 0; i < t; ++i)
    for (int64_t d = 0; d < h; ++d) qs[i * h + d] = q[i * a.q.row + d] * p.scale;
  for (int64_t i = 0; i < t; ++i) {  // D_i = rowsum(dO ∘ O)
    T sum = 0;
    for (int64_t d = 0; d < h; ++d) sum += dout[i * drow + d] * out[i * orow + d];
    delta[i] = sum;
  }
  for (int64_t i = 0; i < t; ++i) std::fill(dq + i * dqrow, dq + i * dqrow + h, T(0));
  for (int64_t j0 = 0; j0 < t; j0 += kTileK) {
    const int64_t cols = std::min(kTileK, t - j0);
    std::fill(w.dkacc.begin(), w.dkacc.end(), T(0));
    std::fill(w.dvacc.begin(), w.dvacc.end(), T(0));
    // The first query tile that sees key j0: with `causal`, the one holding row j0.
    const int64_t first = p.causal ? (j0 / kTileQ) * kTileQ : 0;
    for (int64_t i0 = first; i0 < t; i0 += kTileQ) {
      const int64_t rows = std::min(kTileQ, t - i0);
      // Causal: the tile's part that queries see (off = i0 − j0), or the queries keys are seen by (j0 − i0).
      const Band below = p.causal ? Band::cols_below : Band::all;
      const Band inner = p.causal ? Band::inner_below : Band::all;
      const Band from = p.causal ? Band::inner_from : Band::all;
      gemm_nn(rows, cols, h, qs + i0 * h, h, kt + j0, t, s, kTileK, false, below, i0 - j0);     // s = qs·kᵀ
      gemm_nn(rows, cols, h, dout + i0 * drow, drow, vt + j0, t, dp, kTileK, false, below, i0 - j0);  // dp = dO·vᵀ
      for (int64_t r = 0; r < rows; ++r) {
        T* __restrict sr = s + r * kTileK;
        T* __restrict dpr = dp + r * kTileK;
        const int64_t valid = std::max<int64_t>(0, std::min(cols, p.key_end(i0 + r) - j0));
        const T lse_r = lse[i0 + r], d_r = delta[i0 + r];
        exp_weights(sr, valid, lse_r);  // P
        for (int64_t j = 0; j < valid; ++j) dpr[j] = sr[j] * (dpr[j] - d_r);  // dS = P ∘ (dP − D)
        std::fill(sr + valid, sr + cols, T(0));
        std::fill(dpr + valid, dpr + cols, T(0));
      }
      transpose(rows, cols, s, kTileK, st, kTileQ);
      gemm_nn(cols, h, rows, st, kTileQ, dout + i0 * drow, drow, w.dvacc.data(), h, true, from, j0 - i0);  // dv += Pᵀ·dO
      transpose(rows, cols, dp, kTileK, st, kTileQ);
      gemm_nn(cols, h, rows, st, kTileQ, qs + i0 * h, h, w.dkacc.data(), h, true, from, j0 - i0);    // dk += dSᵀ·qs
      gemm_nn(rows, h, cols, dp, kTileK, k + j0 * krow, krow, dq + i0 * dqrow, dqrow, true, inner, i0 - j0);  // dq += dS·k
    }
    for (int64_t r = 0; r < cols; ++r) {
      std::copy_n(w.dkacc.data() + r * h, h, dk + (j0 + r) * dkrow);
      std::copy_n(w.dvacc.data() + r * h, h, dv + (j0 + r) * dvrow);
    }
  }
  for (int64_t i = 0; i < t; ++i)
    for (int64_t d = 0; d < h; ++d) dq[i * dqrow + d] *= p.scale;  // s = scale·q·kᵀ
}

VCYCLE_TARGET_CLONES void backward_head(const BackwardArgs<float>& a, int64_t head, BackwardScratch<float>& w) {
  backward_head_impl(a, head, w);
}
VCYCLE_TARGET_CLONES void backward_head(const BackwardArgs<double>& a, int64_t head, BackwardScratch<double>& w) {
  backward_head_impl(a, head, w);
}

// ---- tensors -------------------------------------------------------------------------------------

// The dtype the kernels compute in: float and double as they are, reduced precisions in float.
torch::ScalarType compute_type(torch::ScalarType t) {
  return t == torch::kDouble ? torch::kDouble : torch::kFloat;
}

template <class T>
Problem<T> problem_of(const torch::Tensor& q, bool causal) {
  Problem<T> p;
  p.t = q.size(2);
  p.h = q.size(3);
  p.heads = q.size(0) * q.size(1);
  p.causal = causal;
  p.scale = T(1) / std::sqrt(T(p.h));
  return p;
}

// x in dtype ct as (B, H, T, h) with a contiguous last dim: a view of x where it is one already (the
// permuted qkv projection is), else a copy.
torch::Tensor as_rows(const torch::Tensor& x, torch::ScalarType ct) {
  auto y = x.to(ct);
  if (y.dim() != 4) {
    int64_t n = 1;  // the leading dims as heads
    for (int64_t i = 0; i + 2 < y.dim(); ++i) n *= y.size(i);
    y = y.reshape({1, n, y.size(-2), y.size(-1)});
  }
  if (y.stride(3) != 1) y = y.contiguous();
  return y;
}

// x: a (B, H, T, h) view with a contiguous last dim, read (P = const T*) or written (P = T*).
template <class P>
RowsOf<P> rows_of(const torch::Tensor& x) {
  using T = std::remove_const_t<std::remove_pointer_t<P>>;
  TORCH_INTERNAL_ASSERT(x.dim() == 4 && x.stride(3) == 1);
  return {x.data_ptr<T>(), x.size(1), x.stride(0), x.stride(1), x.stride(2)};
}

// q, k, v: as_rows; out: (B, H, T, h) with a contiguous last dim, written. lse: (B, H, T), written.
template <class T>
void forward_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& out,
                    const torch::Tensor& lse, bool causal) {
  RECORD_FUNCTION("vcycle::fused_attention", std::vector<c10::IValue>());  // for `bench train --profile`
  if (q.numel() == 0) return;
  const auto kt = k.transpose(-2, -1).contiguous();
  ForwardArgs<T> a{problem_of<T>(q, causal), rows_of<const T*>(q), kt.data_ptr<T>(), rows_of<const T*>(v),
                   rows_of<T*>(out),         lse.data_ptr<T>()};
  const int64_t items = a.p.heads * a.p.tiles();
  parallel_chunks(items, [&](int64_t begin, int64_t end) {
    ForwardScratch<T> w(a.p.h);
    for (int64_t item = begin; item < end; ++item) forward_tile(a, item, w);
  });
}

// Writes dq, dk, dv: (B, H, T, h) with a contiguous last dim.
template <class T>
void backward_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& out,
                     const torch::Tensor& lse, const torch::Tensor& dout, const torch::Tensor& dq,
                     const torch::Tensor& dk, const torch::Tensor& dv, bool causal) {
  RECORD_FUNCTION("vcycle::fused_attention_backward", std::vector<c10::IValue>());
  if (q.numel() == 0) return;
  const auto kt = k.transpose(-2, -1).contiguous();
  const auto vt = v.transpose(-2, -1).contiguous();
  BackwardArgs<T> a{problem_of<T>(q, causal), rows_of<const T*>(q),    rows_of<const T*>(k), kt.data_ptr<T>(),
                    vt.data_ptr<T>(),         rows_of<const T*>(out),  lse.data_ptr<T>(),    rows_of<const T*>(dout),
                    rows_of<T*>(dq),          rows_of<T*>(dk),         rows_of<T*>(dv)};
  parallel_chunks(a.p.heads, [&](int64_t begin, int64_t end) {
    BackwardScratch<T> w(a.p.t, a.p.h);
    for (int64_t head = begin; head < end; ++head) backward_head(a, head, w);
  });
}

void run_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& out,
                 const torch::Tensor& lse, bool causal) {
  if (q.scalar_type() == torch::kDouble) forward_kernel<double>(q, k, v, out, lse, causal);
  else forward_kernel<float>(q, k, v, out, lse, causal);
}

void run_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& out,
                  const torch::Tensor& lse, const torch::Tensor& dout, const torch::Tensor& dq, const torch::Tensor& dk,
                  const torch::Tensor& dv, bool causal) {
  if (q.scalar_type() == torch::kDouble) backward_kernel<double>(q, k, v, out, lse, dout, dq, dk, dv, causal);
  else backward_kernel<float>(q, k, v, out, lse, dout, dq, dk, dv, causal);
}

torch::Tensor lse_for(const torch::Tensor& q) {
  return torch::empty({q.size(0), q.size(1), q.size(2)}, q.options());
}

struct FusedAttentionFunction : torch::autograd::Function<FusedAttentionFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q_in,
                               const torch::Tensor& k_in, const torch::Tensor& v_in, bool causal) {
    const auto in_type = torch::promote_types(torch::promote_types(q_in.scalar_type(), k_in.scalar_type()),
                                              v_in.scalar_type());
    const auto ct = compute_type(in_type);
    // Views of the inputs where they are in the compute dtype: nothing is copied or kept twice.
    const auto q = as_rows(q_in, ct), k = as_rows(k_in, ct), v = as_rows(v_in, ct);
    auto out = torch::empty(q.sizes(), q.options());
    const auto lse = lse_for(q);
    run_forward(q, k, v, out, lse, causal);
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["q_type"] = static_cast<int64_t>(q_in.scalar_type());
    ctx->saved_data["k_type"] = static_cast<int64_t>(k_in.scalar_type());
    ctx->saved_data["v_type"] = static_cast<int64_t>(v_in.scalar_type());
    out = out.view(q_in.sizes());
    return in_type == ct ? out : out.to(in_type);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const auto dout = as_rows(grads[0].reshape(q.sizes()), q.scalar_type());
    auto dq = torch::empty(q.sizes(), q.options()), dk = torch::empty(q.sizes(), q.options()),
         dv = torch::empty(q.sizes(), q.options());
    run_backward(q, k, v, out, lse, dout, dq, dk, dv, ctx->saved_data["causal"].toBool());
    const auto sizes = grads[0].sizes();
    auto as = [&](const torch::Tensor& t, const char* key) {
      return t.view(sizes).to(static_cast<torch::ScalarType>(ctx->saved_data[key].toInt()));
    };
    return {as(dq, "q_type"), as(dk, "k_type"), as(dv, "v_type"), torch::Tensor()};
  }
};

// (B, T, 3·H·h) -> q, k, v as (B, H, T, h) views of it, and the same for its gradient.
std::vector<torch::Tensor> split_heads(const torch::Tensor& qkv, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), head_size = qkv.size(2) / (3 * heads);
  return qkv.view({b, t, 3, heads, head_size}).permute({2, 0, 3, 1, 4}).unbind(0);
}

// The projections' layouts end to end: q, k and v are read from the qkv projection's output, the
// output is written as (B, T, H·h) for the output projection, and the gradient of q, k and v lands
// in one (B, T, 3·H·h) tensor. Done by ATen, each of those is a copy per layer and direction.
struct FusedQkvAttentionFunction : torch::autograd::Function<FusedQkvAttentionFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv_in, int64_t heads,
                               bool causal) {
    const auto in_type = qkv_in.scalar_type();
    const auto qkv = qkv_in.to(compute_type(in_type)).contiguous();
    const auto parts = split_heads(qkv, heads);
    const int64_t b = qkv.size(0), t = qkv.size(1), width = qkv.size(2) / 3;
    const auto out = torch::empty({b, t, width}, qkv.options());
    const auto out_heads = out.view({b, t, heads, width / heads}).transpose(1, 2);
    const auto lse = lse_for(parts[0]);
    run_forward(parts[0], parts[1], parts[2], out_heads, lse, causal);
    ctx->save_for_backward({qkv, out, lse});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["in_type"] = static_cast<int64_t>(in_type);
    return out.to(in_type);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &qkv = saved[0], &out = saved[1], &lse = saved[2];
    const int64_t heads = ctx->saved_data["heads"].toInt();
    const int64_t b = qkv.size(0), t = qkv.size(1), width = out.size(2);
    const auto view_heads = [&](const torch::Tensor& x) { return x.view({b, t, heads, width / heads}).transpose(1, 2); };
    const auto parts = split_heads(qkv, heads);
    const auto dout = view_heads(grads[0].to(qkv.scalar_type()).contiguous());
    auto dqkv = torch::empty(qkv.sizes(), qkv.options());
    const auto dparts = split_heads(dqkv, heads);
    run_backward(parts[0], parts[1], parts[2], view_heads(out), lse, dout, dparts[0], dparts[1], dparts[2],
                 ctx->saved_data["causal"].toBool());
    return {dqkv.to(static_cast<torch::ScalarType>(ctx->saved_data["in_type"].toInt())), torch::Tensor(),
            torch::Tensor()};
  }
};

void check_dtype(const torch::Tensor& x, const char* what) {
  const auto st = x.scalar_type();
  TORCH_CHECK(st == torch::kFloat || st == torch::kDouble || st == torch::kBFloat16 || st == torch::kHalf, what,
              ": dtype must be float, double, bfloat16 or half, got ", st);
}

}  // namespace

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
  TORCH_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(),
              "fused_attention: q, k, v must have the same number (>= 2) of dims, got shapes ", q.sizes(), ", ",
              k.sizes(), ", ", v.sizes());
  TORCH_CHECK(q.sizes() == k.sizes() && q.sizes() == v.sizes(),
              "fused_attention: q, k, v must have the same shape (self-attention), got ", q.sizes(), ", ", k.sizes(),
              ", ", v.sizes());
  TORCH_CHECK(q.device().is_cpu() && k.device().is_cpu() && v.device().is_cpu(),
              "fused_attention: CPU tensors only, got q on ", q.device());
  for (const auto* x : {&q, &k, &v}) check_dtype(*x, "fused_attention");
  return FusedAttentionFunction::apply(q, k, v, causal);
}

torch::Tensor fused_attention_qkv(const torch::Tensor& qkv, int64_t heads, bool causal) {
  TORCH_CHECK(heads >= 1, "fused_attention_qkv: heads must be >= 1, got ", heads);
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0,
              "fused_attention_qkv: qkv must be (batch, time, 3 * heads * head_size) with heads = ", heads,
              ", got shape ", qkv.sizes());
  TORCH_CHECK(qkv.device().is_cpu(), "fused_attention_qkv: CPU tensors only, got qkv on ", qkv.device());
  check_dtype(qkv, "fused_attention_qkv: qkv");
  return FusedQkvAttentionFunction::apply(qkv, heads, causal);
}

}  // namespace vcycle
