// CAME, multi-tensor: six launches per step for all factored tensors, two for all vectors.
// The math is the spec's (include/vcycle/optim/came.h), arranged as in the CPU kernels.
#include "multi_tensor.cuh"

namespace vcycle::optim::cuda {

namespace {

// 1 / max(1, RMS(u)/d), from Σ u² of the tensor.
__device__ inline float clip_scale(float sum_u2, float numel, float clip) {
  return 1.f / fmaxf(1.f, sqrtf(sum_u2 / numel) / clip);
}

// û = g·a_i·b_j (clipped); m ← m + (1−β1)·(û − m); I = β1²·(û − m_old)² (= (û − m_new)²), whose
// row sums go to sums.row and column sums to sums.col.
__global__ void came_moment_kernel(const Factored* list, int count, FactoredSums sums, CameHyper h) {
  const RowTask k = row_task(list, count, blockIdx.x);
  const Factored& t = *k.t;
  const int64_t rowi = k.mat * t.M + k.i;
  const float numel = static_cast<float>(t.B * t.M * t.N);
  const float a = rsqrtf(t.r[rowi] / (sums.mat_a[t.mat0 + k.mat] / static_cast<float>(t.M))) *
                  clip_scale(sums.tensor_a[k.tensor], numel, h.clip);
  const float* g = t.g + k.offset;
  float* m = t.m + k.offset;
  const float* c = t.c + k.mat * t.N;
  float* col = sums.col + t.col0 + k.mat * t.N;
  const float b1_sq = h.beta1 * h.beta1;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < t.N; j += blockDim.x) {
    const float d = g[j] * a * rsqrtf(c[j]) - m[j];
    m[j] += h.one_minus_beta1 * d;
    const float inst = b1_sq * d * d;
    s += inst;
    atomicAdd(col + j, inst);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) sums.row[blockIdx.x] = s;
}

// W ← (1 − ηλ)·W − η·m·rsqrt(R_i / mean R)·rsqrt(C_j)
__global__ void came_apply_kernel(const Factored* list, int count, FactoredSums sums, CameHyper h) {
  const RowTask k = row_task(list, count, blockIdx.x);
  const Factored& t = *k.t;
  const int64_t rowi = k.mat * t.M + k.i;
  const float a = h.lr * rsqrtf(t.R[rowi] / (sums.mat_b[t.mat0 + k.mat] / static_cast<float>(t.M)));
  float* w = t.w + k.offset;
  const float* m = t.m + k.offset;
  const float* C = t.C + k.mat * t.N;
  for (int64_t j = threadIdx.x; j < t.N; j += blockDim.x) w[j] = h.decay * w[j] - a * m[j] * rsqrtf(C[j]);
}

// v ← β2·v + (1−β2)·(g² + ε1); Σ (g·rsqrt v)² per tensor.
__global__ void came_flat_moment_kernel(const Flat* list, const Chunk* chunks, CameHyper h, float* u_squares) {
  const Chunk k = chunks[blockIdx.x];
  const Flat& t = list[k.tensor];
  float s = 0.f;
  for (int64_t e = k.begin + threadIdx.x; e < k.begin + k.length; e += blockDim.x) {
    const float g = t.g[e];
    const float v = h.beta2 * t.v[e] + h.one_minus_beta2 * (g * g + h.eps1);
    t.v[e] = v;
    s += g * g / v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) atomicAdd(u_squares + k.tensor, s);
}

// û = clipped g·rsqrt v;  m ← β1·m + (1−β1)·û;  W ← (1 − ηλ)·W − η·m
__global__ void came_flat_apply_kernel(const Flat* list, const Chunk* chunks, CameHyper h, const float* u_squares) {
  const Chunk k = chunks[blockIdx.x];
  const Flat& t = list[k.tensor];
  const float scale = clip_scale(u_squares[k.tensor], static_cast<float>(t.n), h.clip);
  for (int64_t e = k.begin + threadIdx.x; e < k.begin + k.length; e += blockDim.x) {
    const float m = h.beta1 * t.m[e] + h.one_minus_beta1 * (t.g[e] * rsqrtf(t.v[e]) * scale);
    t.m[e] = m;
    t.w[e] = h.decay * t.w[e] - h.lr * m;
  }
}

}  // namespace

void came_factored(const Factored* list, int count, int64_t rows, int64_t cols, int64_t mats, const CameHyper& h,
                   float* workspace, void* stream) {
  if (count == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const FactoredSums sums = factored_sums(workspace, rows, cols, mats, count);
  cudaMemsetAsync(workspace, 0, factored_workspace_floats(rows, cols, mats, count) * sizeof(float), s);
  const auto grid_rows = static_cast<unsigned>(rows);
  squares_kernel<<<grid_rows, kThreads, 0, s>>>(list, count, sums, nullptr);
  moving_means_kernel<<<blocks_for(rows + cols), kThreads, 0, s>>>(list, count, rows, cols, sums, h.beta2,
                                                                    h.one_minus_beta2, h.eps1, false, sums.mat_a);
  update_squares_kernel<<<grid_rows, kThreads, 0, s>>>(list, count, sums);
  cudaMemsetAsync(sums.col, 0, cols * sizeof(float), s);
  came_moment_kernel<<<grid_rows, kThreads, 0, s>>>(list, count, sums, h);
  moving_means_kernel<<<blocks_for(rows + cols), kThreads, 0, s>>>(list, count, rows, cols, sums, h.beta3,
                                                                    h.one_minus_beta3, h.eps2, true, sums.mat_b);
  came_apply_kernel<<<grid_rows, kThreads, 0, s>>>(list, count, sums, h);
  check_launch("came_factored");
}

void came_flat(const Flat* list, int count, const Chunk* chunks, int64_t chunk_count, const CameHyper& h,
               float* workspace, void* stream) {
  if (count == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(workspace, 0, flat_workspace_floats(count) * sizeof(float), s);
  const auto grid = static_cast<unsigned>(chunk_count);
  came_flat_moment_kernel<<<grid, kThreads, 0, s>>>(list, chunks, h, workspace);
  came_flat_apply_kernel<<<grid, kThreads, 0, s>>>(list, chunks, h, workspace);
  check_launch("came_flat");
}

}  // namespace vcycle::optim::cuda
