// LAMB, multi-tensor: one launch for the moments and the two norms of every tensor, one for the
// update. The update u is recomputed in the second launch from m and v rather than stored: a few
// flops are cheaper than a parameter-sized buffer written and read back.
#include "multi_tensor.cuh"

namespace vcycle::optim::cuda {

namespace {

// u = m̂ / (sqrt(v̂) + ε) + λ·W
__device__ inline float lamb_update(const Flat& t, int64_t e, const LambHyper& h) {
  return (t.m[e] / h.bias_correction1) / (sqrtf(t.v[e] / h.bias_correction2) + h.eps) + t.weight_decay * t.w[e];
}

// m, v moving averages; Σ W² into w_squares and Σ u² into u_squares, per tensor.
__global__ void lamb_moments_kernel(const Flat* list, const Chunk* chunks, LambHyper h, float* w_squares,
                                    float* u_squares) {
  const Chunk k = chunks[blockIdx.x];
  const Flat& t = list[k.tensor];
  float ws = 0.f, us = 0.f;
  for (int64_t e = k.begin + threadIdx.x; e < k.begin + k.length; e += blockDim.x) {
    const float g = t.g[e];
    t.m[e] = h.beta1 * t.m[e] + h.one_minus_beta1 * g;
    t.v[e] = h.beta2 * t.v[e] + h.one_minus_beta2 * g * g;
    const float u = lamb_update(t, e, h);
    ws += t.w[e] * t.w[e];
    us += u * u;
  }
  ws = block_sum(ws);
  us = block_sum(us);
  if (threadIdx.x == 0) {
    atomicAdd(w_squares + k.tensor, ws);
    atomicAdd(u_squares + k.tensor, us);
  }
}

// W ← W − η·r·u with the trust ratio r = ‖W‖/‖u‖ (1 when either is zero or adaptation is off).
__global__ void lamb_apply_kernel(const Flat* list, const Chunk* chunks, LambHyper h, const float* w_squares,
                                  const float* u_squares) {
  const Chunk k = chunks[blockIdx.x];
  const Flat& t = list[k.tensor];
  const float wn = sqrtf(w_squares[k.tensor]), un = sqrtf(u_squares[k.tensor]);
  const float ratio = (t.trust_ratio && wn > 0.f && un > 0.f) ? wn / un : 1.f;
  for (int64_t e = k.begin + threadIdx.x; e < k.begin + k.length; e += blockDim.x) {
    // every thread reads its own W before writing it, so the norm above saw the old W
    t.w[e] -= h.lr * ratio * lamb_update(t, e, h);
  }
}

}  // namespace

void lamb_flat(const Flat* list, int count, const Chunk* chunks, int64_t chunk_count, const LambHyper& h,
               float* workspace, void* stream) {
  if (count == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(workspace, 0, flat_workspace_floats(count) * sizeof(float), s);
  const auto grid = static_cast<unsigned>(chunk_count);
  lamb_moments_kernel<<<grid, kThreads, 0, s>>>(list, chunks, h, workspace, workspace + count);
  lamb_apply_kernel<<<grid, kThreads, 0, s>>>(list, chunks, h, workspace, workspace + count);
  check_launch("lamb_flat");
}

}  // namespace vcycle::optim::cuda
