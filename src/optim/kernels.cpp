// Fused CPU kernels for CAME, LAMB and Adafactor; see kernels.h for the contract.
//
// Memory traffic is what these kernels are about: a CAME step on an M×N matrix reads G three
// times, m twice and W once, and writes m and W once (LibTorch's AdamW moves about three times as
// many bytes). Inner loops keep eight independent partial sums so that the compiler can vectorise
// them without reassociating floating-point additions.
#include "kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "vcycle/core/parallel_chunks.h"
#include "vcycle/optim/fused.h"

namespace vcycle::optim {

namespace {
std::atomic<bool> fused_switch{true};
}  // namespace

void set_fused_cpu_kernels(bool enabled) { fused_switch.store(enabled); }
bool fused_cpu_kernels() { return fused_switch.load(); }

}  // namespace vcycle::optim

namespace vcycle::optim::detail {

bool fused_ok(std::initializer_list<const torch::Tensor*> tensors) {
  if (!fused_cpu_kernels()) return false;
  for (const torch::Tensor* t : tensors) {
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != torch::kFloat || !t->is_contiguous() ||
        t->is_sparse())
      return false;
  }
  return true;
}

namespace {

constexpr int kLanes = 8;                   // partial sums per row loop
constexpr int64_t kParallelMin = 1 << 15;   // entries below which a kernel stays on one thread
constexpr int64_t kMaxBlocks = 64;          // row blocks per matrix (bounds the partial-sum buffer)
constexpr int64_t kMinBlockRows = 16;
constexpr int64_t kChunk = 1 << 14;         // entries per block of a 1-D parameter

// ---- blocking ----------------------------------------------------------------------------------

struct Blocks {
  int64_t count;  // number of blocks
  int64_t size;   // rows (or entries) per block; the last may be shorter
};

// Depends on the shape only, never on the thread count: results are reproducible.
Blocks row_blocks(int64_t rows) {
  const int64_t size = std::max(kMinBlockRows, (rows + kMaxBlocks - 1) / kMaxBlocks);
  return {std::max<int64_t>(1, (rows + size - 1) / size), size};
}

Blocks chunks(int64_t n) { return {std::max<int64_t>(1, (n + kChunk - 1) / kChunk), kChunk}; }

template <class F>
void for_each_block(int64_t count, int64_t entries, const F& f) {
  if (count == 1 || entries < kParallelMin) {
    for (int64_t b = 0; b < count; ++b) f(b);
    return;
  }
  // Not at::parallel_for: in vcycle's own sources it runs serially (vcycle/core/parallel_chunks.h says why).
  parallel_chunks(count, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b);
  });
}

inline float sum_lanes(const float* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// Column sums = Σ over blocks (in block order) of the per-block partial rows.
void merge_partials(const std::vector<float>& part, int64_t count, int64_t N, float* out) {
  std::copy(part.begin(), part.begin() + N, out);
  for (int64_t b = 1; b < count; ++b) {
    const float* p = part.data() + b * N;
    for (int64_t j = 0; j < N; ++j) out[j] += p[j];
  }
}

// ---- row loops ---------------------------------------------------------------------------------

// Σ_j x_j², adding each x_j² into col[j].
inline float row_squares(const float* __restrict x, float* __restrict col, int64_t N) {
  float lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= N; j += kLanes) {
    for (int t = 0; t < kLanes; ++t) {
      const float s = x[j + t] * x[j + t];
      lane[t] += s;
      col[j + t] += s;
    }
  }
  float tail = 0.f;
  for (; j < N; ++j) {
    const float s = x[j] * x[j];
    tail += s;
    col[j] += s;
  }
  return sum_lanes(lane) + tail;
}

// Σ_j (x_j·b_j)².
inline float row_scaled_squares(const float* __restrict x, const float* __restrict b, int64_t N) {
  float lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= N; j += kLanes) {
    for (int t = 0; t < kLanes; ++t) {
      const float s = x[j + t] * b[j + t];
      lane[t] += s * s;
    }
  }
  float tail = 0.f;
  for (; j < N; ++j) {
    const float s = x[j] * b[j];
    tail += s * s;
  }
  return sum_lanes(lane) + tail;
}

// CAME's momentum and instability on one row: û = g·a·b_j, m ← β1·m + (1−β1)·û, d = û − m;
// returns Σ_j d² and adds d² into col[j].
inline float row_came_moment(const float* __restrict g, float* __restrict m, const float* __restrict b,
                             float* __restrict col, int64_t N, float a, float beta1, float one_minus) {
  float lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= N; j += kLanes) {
    for (int t = 0; t < kLanes; ++t) {
      const float u = g[j + t] * a * b[j + t];
      const float mn = beta1 * m[j + t] + one_minus * u;
      m[j + t] = mn;
      const float d = u - mn;
      lane[t] += d * d;
      col[j + t] += d * d;
    }
  }
  float tail = 0.f;
  for (; j < N; ++j) {
    const float u = g[j] * a * b[j];
    const float mn = beta1 * m[j] + one_minus * u;
    m[j] = mn;
    const float d = u - mn;
    tail += d * d;
    col[j] += d * d;
  }
  return sum_lanes(lane) + tail;
}

// w ← w·decay − A·s_j·b_j (A carries η).
inline void row_scaled_update(float* __restrict w, const float* __restrict s, const float* __restrict b, int64_t N,
                              float A, float decay) {
  for (int64_t j = 0; j < N; ++j) w[j] = w[j] * decay - A * s[j] * b[j];
}

// Adafactor's step on one row: û = g·a·b_j (a carries α and the clip); with m, m ← β1·m + (1−β1)·û
// and the step is m, else û; w ← w·decay − step.
inline void row_adafactor_apply(float* __restrict w, const float* __restrict g, float* __restrict m,
                                const float* __restrict b, int64_t N, float a, float beta1, float one_minus,
                                float decay) {
  if (m != nullptr) {
    for (int64_t j = 0; j < N; ++j) {
      const float u = g[j] * a * b[j];
      const float mn = beta1 * m[j] + one_minus * u;
      m[j] = mn;
      w[j] = w[j] * decay - mn;
    }
  } else {
    for (int64_t j = 0; j < N; ++j) w[j] = w[j] * decay - g[j] * a * b[j];
  }
}

// ---- whole-matrix passes -------------------------------------------------------------------------

// rows[i] = Σ_j g_ij², cols[j] = Σ_i g_ij².
void square_sums(const float* g, int64_t M, int64_t N, float* rows, float* cols, std::vector<float>& part) {
  const Blocks blk = row_blocks(M);
  part.assign(blk.count * N, 0.f);
  for_each_block(blk.count, M * N, [&](int64_t b) {
    float* col = part.data() + b * N;
    const int64_t end = std::min(M, (b + 1) * blk.size);
    for (int64_t i = b * blk.size; i < end; ++i) rows[i] = row_squares(g + i * N, col, N);
  });
  merge_partials(part, blk.count, N, cols);
}

// Σ_ij (g_ij·a_i·b_j)², accumulated per row and then over rows in double; `rows` is scratch (M).
double scaled_square_sum(const float* g, int64_t M, int64_t N, const float* a, const float* b, float* rows) {
  const Blocks blk = row_blocks(M);
  for_each_block(blk.count, M * N, [&](int64_t bl) {
    const int64_t end = std::min(M, (bl + 1) * blk.size);
    for (int64_t i = bl * blk.size; i < end; ++i) rows[i] = row_scaled_squares(g + i * N, b, N);
  });
  double total = 0.0;
  for (int64_t i = 0; i < M; ++i) total += static_cast<double>(a[i]) * a[i] * rows[i];
  return total;
}

// x ← β·x + (1−β)·(sum/count + eps), the EMA of a row or column mean.
void ema_of_mean(float* x, const float* sums, int64_t n, int64_t count, float beta, float one_minus, float eps) {
  const float inv = 1.f / static_cast<float>(count);
  for (int64_t i = 0; i < n; ++i) x[i] = beta * x[i] + one_minus * (sums[i] * inv + eps);
}

// out = scale·rsqrt(x / mean(x)).
void relative_rsqrt(const float* x, int64_t n, float scale, float* out) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += x[i];
  const float mean = static_cast<float>(total / static_cast<double>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = scale * (1.f / std::sqrt(x[i] / mean));
}

void rsqrt_all(const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = 1.f / std::sqrt(x[i]);
}

// The clipping divisor max(1, RMS/d); NaN stays NaN so that a broken gradient shows.
double clip_divisor(double square_sum, int64_t numel, double clip) {
  const double ratio = std::sqrt(square_sum / static_cast<double>(numel)) / clip;
  return std::isnan(ratio) ? ratio : std::max(1.0, ratio);
}

// Steps 1–3 shared by CAME and Adafactor on a factored parameter: updates r and c from G and
// leaves in a (B×M) and b (B×N) the factors with û_ij = g_ij·a_i·b_j (clip included) and `scale`
// folded into a. rows, cols: scratch of M and N floats.
void factored_second_moment(const float* g, float* r, float* c, int64_t B, int64_t M, int64_t N, float beta2,
                            float one_minus_beta2, float eps1, float clip, float scale, std::vector<float>& a, std::vector<float>& b,
                            std::vector<float>& rows, std::vector<float>& cols, std::vector<float>& part) {
  const int64_t MN = M * N;
  a.resize(B * M);
  b.resize(B * N);
  rows.resize(M);
  cols.resize(N);
  double square_sum = 0.0;  // Σ u²
  for (int64_t bt = 0; bt < B; ++bt) {
    const float* gb = g + bt * MN;
    square_sums(gb, M, N, rows.data(), cols.data(), part);
    ema_of_mean(r + bt * M, rows.data(), M, N, beta2, one_minus_beta2, eps1);
    ema_of_mean(c + bt * N, cols.data(), N, M, beta2, one_minus_beta2, eps1);
    relative_rsqrt(r + bt * M, M, 1.f, a.data() + bt * M);
    rsqrt_all(c + bt * N, N, b.data() + bt * N);
    square_sum += scaled_square_sum(gb, M, N, a.data() + bt * M, b.data() + bt * N, rows.data());
  }
  const double k = clip_divisor(square_sum, B * MN, clip);
  const float s = static_cast<float>(scale / k);
  for (float& x : a) x *= s;
}

}  // namespace

// ---- CAME ----------------------------------------------------------------------------------------

void came_factored(float* w, const float* g, float* m, float* r, float* c, float* R, float* C, int64_t B,
                   int64_t M, int64_t N, const CameStep& h) {
  std::vector<float> a, b, rows, cols, part, A(M), Bc(N);
  factored_second_moment(g, r, c, B, M, N, h.beta2, h.one_minus_beta2, h.eps1, h.clip, 1.f, a, b, rows, cols, part);
  const int64_t MN = M * N;
  const Blocks blk = row_blocks(M);
  for (int64_t bt = 0; bt < B; ++bt) {
    const float* gb = g + bt * MN;
    float* mb = m + bt * MN;
    float* wb = w + bt * MN;
    const float* ab = a.data() + bt * M;
    const float* bb = b.data() + bt * N;
    // m and the instability (û − m)²: row sums and column partials
    part.assign(blk.count * N, 0.f);
    for_each_block(blk.count, MN, [&](int64_t bl) {
      float* col = part.data() + bl * N;
      const int64_t end = std::min(M, (bl + 1) * blk.size);
      for (int64_t i = bl * blk.size; i < end; ++i)
        rows[i] = row_came_moment(gb + i * N, mb + i * N, bb, col, N, ab[i], h.beta1, h.one_minus_beta1);
    });
    merge_partials(part, blk.count, N, cols.data());
    ema_of_mean(R + bt * M, rows.data(), M, N, h.beta3, h.one_minus_beta3, h.eps2);
    ema_of_mean(C + bt * N, cols.data(), N, M, h.beta3, h.one_minus_beta3, h.eps2);
    relative_rsqrt(R + bt * M, M, h.lr, A.data());  // η·rsqrt(R / mean R)
    rsqrt_all(C + bt * N, N, Bc.data());
    // W ← W·(1 − ηλ) − η·m·A·B
    for_each_block(blk.count, MN, [&](int64_t bl) {
      const int64_t end = std::min(M, (bl + 1) * blk.size);
      for (int64_t i = bl * blk.size; i < end; ++i)
        row_scaled_update(wb + i * N, mb + i * N, Bc.data(), N, A[i], h.decay);
    });
  }
}

namespace {
// The unfactored second moment shared by CAME and Adafactor (1-D path):
// v ← β2·v + (1−β2)·(G² + ε1); returns Σ (G·rsqrt(v))² for the update clipping.
double vector_second_moment(const float* g, float* v, int64_t n, const Blocks& blk, float beta2, float one_minus2,
                            float eps1) {
  std::vector<double> partial(blk.count);
  for_each_block(blk.count, n, [&](int64_t bl) {
    const int64_t begin = bl * blk.size, end = std::min(n, begin + blk.size);
    float lane[kLanes] = {};
    for (int64_t i = begin; i < end; ++i) {
      const float vn = beta2 * v[i] + one_minus2 * (g[i] * g[i] + eps1);
      v[i] = vn;
      const float u = g[i] * (1.f / std::sqrt(vn));
      lane[(i - begin) % kLanes] += u * u;
    }
    partial[bl] = sum_lanes(lane);
  });
  double square_sum = 0.0;
  for (double p : partial) square_sum += p;
  return square_sum;
}
}  // namespace

void came_vector(float* w, const float* g, float* m, float* v, int64_t n, const CameStep& h) {
  const Blocks blk = chunks(n);
  const double square_sum = vector_second_moment(g, v, n, blk, h.beta2, h.one_minus_beta2, h.eps1);
  const float scale = static_cast<float>(1.0 / clip_divisor(square_sum, n, h.clip));
  const float one_minus1 = h.one_minus_beta1;
  // û = u / max(1, RMS(u)/d);  m ← β1·m + (1−β1)·û;  W ← W·(1 − ηλ) − η·m
  for_each_block(blk.count, n, [&](int64_t bl) {
    const int64_t begin = bl * blk.size, end = std::min(n, begin + blk.size);
    for (int64_t i = begin; i < end; ++i) {
      const float u = g[i] * (1.f / std::sqrt(v[i])) * scale;
      const float mn = h.beta1 * m[i] + one_minus1 * u;
      m[i] = mn;
      w[i] = w[i] * h.decay - h.lr * mn;
    }
  });
}

// ---- LAMB ----------------------------------------------------------------------------------------

// LAMB's loops are bound by sqrt and division, not memory: an AVX2 copy (8 lanes instead of SSE2's
// 4) is picked at load time on CPUs that have it.
#if defined(__x86_64__) && defined(__GNUC__)
#define VCYCLE_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define VCYCLE_AVX2_CLONE
#endif

namespace {

// The loops below take the step by value: they write through float pointers, and a compiler must
// assume such writes could change fields read through a reference.

// u = m̂ / (sqrt(v̂) + eps) + λ·w, in the ATen path's order of operations (it skips a bc1 of 1 too).
inline float lamb_direction(float m, float v, float w, const LambStep& c) {
  float u = m / (std::sqrt(v / c.bc2) + c.eps);
  if (c.bc1 != 1.f) u /= c.bc1;
  return u + c.weight_decay * w;
}

inline void lamb_moments(const float* __restrict g, float* __restrict m, float* __restrict v, int64_t k,
                         const LambStep& c) {
  m[k] = c.beta1 * m[k] + c.one_minus_beta1 * g[k];
  v[k] = c.beta2 * v[k] + c.one_minus_beta2 * g[k] * g[k];
}

// Pass 1 of a block: updates m and v, adds u² and W² into eight lanes each.
VCYCLE_AVX2_CLONE void lamb_moments_and_norms(const float* __restrict g, float* __restrict m,
                                              float* __restrict v, const float* __restrict w, int64_t n,
                                              const LambStep c, float* __restrict u_lane,
                                              float* __restrict w_lane) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int t = 0; t < kLanes; ++t) {
      lamb_moments(g, m, v, i + t, c);
      const float u = lamb_direction(m[i + t], v[i + t], w[i + t], c);
      u_lane[t] += u * u;
      w_lane[t] += w[i + t] * w[i + t];
    }
  }
  for (int t = 0; i < n; ++i, ++t) {
    lamb_moments(g, m, v, i, c);
    const float u = lamb_direction(m[i], v[i], w[i], c);
    u_lane[t] += u * u;
    w_lane[t] += w[i] * w[i];
  }
}

// W ← W − step·u, u recomputed from m, v and W.
VCYCLE_AVX2_CLONE void lamb_apply(float* __restrict w, const float* __restrict m, const float* __restrict v,
                                  int64_t n, float step, const LambStep c) {
  for (int64_t i = 0; i < n; ++i) w[i] -= step * lamb_direction(m[i], v[i], w[i], c);
}

// Without the trust ratio: moments and update in one pass.
VCYCLE_AVX2_CLONE void lamb_one_pass(float* __restrict w, const float* __restrict g, float* __restrict m,
                                     float* __restrict v, int64_t n, const LambStep c) {
  for (int64_t i = 0; i < n; ++i) {
    lamb_moments(g, m, v, i, c);
    w[i] -= c.lr * lamb_direction(m[i], v[i], w[i], c);
  }
}

}  // namespace

// Two passes when the trust ratio is on, because it needs ‖u‖ before any entry of W may change:
// the first updates m and v and sums u² and W²; the second recomputes u from m, v and W (cheaper
// than storing it) and applies the step. Without the trust ratio one pass does everything. Both
// loops vectorise (kernels.cpp is compiled with -fno-math-errno, so sqrt needs no error path).
void lamb_update(float* w, const float* g, float* m, float* v, int64_t n, const LambStep& h) {
  const Blocks blk = chunks(n);
  auto range = [&](int64_t bl) { return std::make_pair(bl * blk.size, std::min(n, (bl + 1) * blk.size)); };
  if (!h.trust_ratio) {
    for_each_block(blk.count, n, [&](int64_t bl) {
      const auto [begin, end] = range(bl);
      lamb_one_pass(w + begin, g + begin, m + begin, v + begin, end - begin, h);
    });
    return;
  }
  std::vector<double> u_part(blk.count), w_part(blk.count);
  for_each_block(blk.count, n, [&](int64_t bl) {
    const auto [begin, end] = range(bl);
    float u_lane[kLanes] = {}, w_lane[kLanes] = {};
    lamb_moments_and_norms(g + begin, m + begin, v + begin, w + begin, end - begin, h, u_lane, w_lane);
    u_part[bl] = sum_lanes(u_lane);
    w_part[bl] = sum_lanes(w_lane);
  });
  double u_sq = 0.0, w_sq = 0.0;  // block order: independent of the thread count
  for (int64_t bl = 0; bl < blk.count; ++bl) {
    u_sq += u_part[bl];
    w_sq += w_part[bl];
  }
  const double w_norm = std::sqrt(w_sq), u_norm = std::sqrt(u_sq);
  const double ratio = (w_norm > 0 && u_norm > 0) ? w_norm / u_norm : 1.0;
  const float step = static_cast<float>(h.lr * ratio);
  for_each_block(blk.count, n, [&](int64_t bl) {
    const auto [begin, end] = range(bl);
    lamb_apply(w + begin, m + begin, v + begin, end - begin, step, h);
  });
}

// ---- Adafactor -----------------------------------------------------------------------------------

void adafactor_factored(float* w, const float* g, float* m, float* r, float* c, int64_t B, int64_t M, int64_t N,
                        const AdafactorStep& h) {
  std::vector<float> a, b, rows, cols, part;
  factored_second_moment(g, r, c, B, M, N, h.beta2, h.one_minus_beta2, h.eps1, h.clip, h.alpha, a, b, rows, cols,
                         part);
  const int64_t MN = M * N;
  const Blocks blk = row_blocks(M);
  for (int64_t bt = 0; bt < B; ++bt) {
    const float* gb = g + bt * MN;
    float* mb = m == nullptr ? nullptr : m + bt * MN;
    float* wb = w + bt * MN;
    const float* ab = a.data() + bt * M;
    const float* bb = b.data() + bt * N;
    for_each_block(blk.count, MN, [&](int64_t bl) {
      const int64_t end = std::min(M, (bl + 1) * blk.size);
      for (int64_t i = bl * blk.size; i < end; ++i)
        row_adafactor_apply(wb + i * N, gb + i * N, mb == nullptr ? nullptr : mb + i * N, bb, N, ab[i], h.beta1,
                            h.one_minus_beta1, h.decay);
    });
  }
}

void adafactor_vector(float* w, const float* g, float* m, float* v, int64_t n, const AdafactorStep& h) {
  const Blocks blk = chunks(n);
  const double square_sum = vector_second_moment(g, v, n, blk, h.beta2, h.one_minus_beta2, h.eps1);
  const float scale = static_cast<float>(h.alpha / clip_divisor(square_sum, n, h.clip));
  const float one_minus1 = h.one_minus_beta1;
  for_each_block(blk.count, n, [&](int64_t bl) {
    const int64_t begin = bl * blk.size, end = std::min(n, begin + blk.size);
    for (int64_t i = begin; i < end; ++i) {
      const float u = g[i] * (1.f / std::sqrt(v[i])) * scale;
      float step = u;
      if (m != nullptr) {
        step = h.beta1 * m[i] + one_minus1 * u;
        m[i] = step;
      }
      w[i] = w[i] * h.decay - step;
    }
  });
}

}  // namespace vcycle::optim::detail
