// Adafactor, multi-tensor: the second moment and update clipping share CAME's kernels
// (multi_tensor.cuh); the step size α needs RMS(W), summed in the same pass as the row sums.
#include "multi_tensor.cuh"

namespace vcycle::optim::cuda {

namespace {

// α = ρ·max(ε2, RMS(W)) with scale_parameter, else ρ.
__device__ inline float step_size(const AdafactorHyper& h, float sum_w2, float numel) {
  return h.scale_parameter ? h.rho * fmaxf(h.eps2, sqrtf(sum_w2 / numel)) : h.rho;
}

// û = α·g·a_i·b_j (clipped); step = β1 ? (m ← β1·m + (1−β1)·û) : û;  W ← W − λα·W − step
__global__ void adafactor_apply_kernel(const Factored* list, int count, FactoredSums sums, AdafactorHyper h) {
  const RowTask k = row_task(list, count, blockIdx.x);
  const Factored& t = *k.t;
  const int64_t rowi = k.mat * t.M + k.i;
  const float numel = static_cast<float>(t.B * t.M * t.N);
  const float alpha = step_size(h, sums.tensor_b[k.tensor], numel);
  const float clip = 1.f / fmaxf(1.f, sqrtf(sums.tensor_a[k.tensor] / numel) / h.clip);
  const float a = alpha * clip * rsqrtf(t.r[rowi] / (sums.mat_a[t.mat0 + k.mat] / static_cast<float>(t.M)));
  const float* g = t.g + k.offset;
  float* w = t.w + k.offset;
  float* m = t.m ? t.m + k.offset : nullptr;
  const float* c = t.c + k.mat * t.N;
  const float decay = 1.f - h.weight_decay * alpha;
  for (int64_t j = threadIdx.x; j < t.N; j += blockDim.x) {
    float step = g[j] * a * rsqrtf(c[j]);
    if (m) step = m[j] = h.beta1 * m[j] + h.one_minus_beta1 * step;
    w[j] = decay * w[j] - step;
  }
}

// v ← β2ₜ·v + (1−β2ₜ)·(g² + ε1); Σ (g·rsqrt v)² and Σ W² per tensor.
__global__ void adafactor_flat_moment_kernel(const Flat* list, const Chunk* chunks, AdafactorHyper h,
                                             float* u_squares, float* w_squares) {
  const Chunk k = chunks[blockIdx.x];
  const Flat& t = list[k.tensor];
  float us = 0.f, ws = 0.f;
  for (int64_t e = k.begin + threadIdx.x; e < k.begin + k.length; e += blockDim.x) {
    const float g = t.g[e];
    const float v = h.beta2 * t.v[e] + h.one_minus_beta2 * (g * g + h.eps1);
    t.v[e] = v;
    us += g * g / v;
    ws += t.w[e] * t.w[e];
  }
  us = block_sum(us);
  ws = block_sum(ws);
  if (threadIdx.x == 0) {
    atomicAdd(u_squares + k.tensor, us);
    atomicAdd(w_squares + k.tensor, ws);
  }
}

__global__ void adafactor_flat_apply_kernel(const Flat* list, const Chunk* chunks, AdafactorHyper h,
                                            const float* u_squares, const float* w_squares) {
  const Chunk k = chunks[blockIdx.x];
  const Flat& t = list[k.tensor];
  const float numel = static_cast<float>(t.n);
  const float alpha = step_size(h, w_squares[k.tensor], numel);
  const float a = alpha / fmaxf(1.f, sqrtf(u_squares[k.tensor] / numel) / h.clip);
  const float decay = 1.f - h.weight_decay * alpha;
  for (int64_t e = k.begin + threadIdx.x; e < k.begin + k.length; e += blockDim.x) {
    float step = t.g[e] * rsqrtf(t.v[e]) * a;
    if (t.m) step = t.m[e] = h.beta1 * t.m[e] + h.one_minus_beta1 * step;
    t.w[e] = decay * t.w[e] - step;
  }
}

}  // namespace

void adafactor_factored(const Factored* list, int count, int64_t rows, int64_t cols, int64_t mats,
                        const AdafactorHyper& h, float* workspace, void* stream) {
  if (count == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const FactoredSums sums = factored_sums(workspace, rows, cols, mats, count);
  cudaMemsetAsync(workspace, 0, factored_workspace_floats(rows, cols, mats, count) * sizeof(float), s);
  const auto grid_rows = static_cast<unsigned>(rows);
  squares_kernel<<<grid_rows, kThreads, 0, s>>>(list, count, sums, sums.tensor_b);
  moving_means_kernel<<<blocks_for(rows + cols), kThreads, 0, s>>>(list, count, rows, cols, sums, h.beta2,
                                                                    h.one_minus_beta2, h.eps1, false, sums.mat_a);
  update_squares_kernel<<<grid_rows, kThreads, 0, s>>>(list, count, sums);
  adafactor_apply_kernel<<<grid_rows, kThreads, 0, s>>>(list, count, sums, h);
  check_launch("adafactor_factored");
}

void adafactor_flat(const Flat* list, int count, const Chunk* chunks, int64_t chunk_count, const AdafactorHyper& h,
                    float* workspace, void* stream) {
  if (count == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(workspace, 0, flat_workspace_floats(count) * sizeof(float), s);
  const auto grid = static_cast<unsigned>(chunk_count);
  adafactor_flat_moment_kernel<<<grid, kThreads, 0, s>>>(list, chunks, h, workspace, workspace + count);
  adafactor_flat_apply_kernel<<<grid, kThreads, 0, s>>>(list, chunks, h, workspace, workspace + count);
  check_launch("adafactor_flat");
}

}  // namespace vcycle::optim::cuda
