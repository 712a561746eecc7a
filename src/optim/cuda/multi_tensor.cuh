// Shared device helpers of the multi-tensor optimizer kernels (see optim_kernels.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "optim_kernels.h"

namespace vcycle::optim::cuda {

// The kernels below are `static`: came.cu and adafactor.cu both include this header, and a
// __global__ function with external linkage would be defined twice at link time.

constexpr int kThreads = 256;

inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(kernel) + ": CUDA launch failed: " + cudaGetErrorString(e));
}

// Sum of `x` over the block; the result is valid in thread 0.
__device__ inline float block_sum(float x) {
  __shared__ float warp_sums[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) x += __shfl_down_sync(0xffffffffu, x, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = x;
  __syncthreads();
  x = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : 0.f;
  if (warp == 0) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_down_sync(0xffffffffu, x, o);
  }
  __syncthreads();  // warp_sums may be reused by the next call
  return x;
}

// The tensor whose rows contain global row `row` (tensors are sorted by row0).
__device__ inline int tensor_of_row(const Factored* list, int count, int64_t row) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (list[mid].row0 <= row) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// One row of a factored tensor, as seen by the thread block that owns it.
struct RowTask {
  const Factored* t;
  int tensor;
  int64_t mat;      // matrix index within the tensor
  int64_t i;        // row within the matrix
  int64_t offset;   // of the row's first entry in w, g, m
};

__device__ inline RowTask row_task(const Factored* list, int count, int64_t row) {
  RowTask k;
  k.tensor = tensor_of_row(list, count, row);
  k.t = &list[k.tensor];
  const int64_t local = row - k.t->row0;
  k.mat = local / k.t->M;
  k.i = local % k.t->M;
  k.offset = local * k.t->N;
  return k;
}

// Workspace views.
struct FactoredSums {
  float* row;        // per global row
  float* col;        // per global column entry
  float* mat_a;      // per global matrix
  float* mat_b;
  float* tensor_a;   // per tensor
  float* tensor_b;
};

// Layout of factored_workspace_floats(rows, cols, mats, count).
inline FactoredSums factored_sums(float* ws, int64_t rows, int64_t cols, int64_t mats, int64_t count) {
  float* tensors = ws + rows + cols + 2 * mats;
  return {ws, ws + rows, ws + rows + cols, ws + rows + cols + mats, tensors, tensors + count};
}

inline unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// Row sums of g² into sums.row, column sums into sums.col (zeroed by the caller), and, when
// `w_squares` is given, Σ w² per tensor.
static __global__ void squares_kernel(const Factored* list, int count, FactoredSums sums, float* w_squares) {
  const RowTask k = row_task(list, count, blockIdx.x);
  const Factored& t = *k.t;
  const float* g = t.g + k.offset;
  const float* w = t.w + k.offset;
  float* col = sums.col + t.col0 + k.mat * t.N;
  float s = 0.f, ws = 0.f;
  for (int64_t j = threadIdx.x; j < t.N; j += blockDim.x) {
    const float x = g[j] * g[j];
    s += x;
    atomicAdd(col + j, x);
    if (w_squares) ws += w[j] * w[j];
  }
  s = block_sum(s);
  if (w_squares) ws = block_sum(ws);
  if (threadIdx.x == 0) {
    sums.row[blockIdx.x] = s;
    if (w_squares) atomicAdd(w_squares + k.tensor, ws);
  }
}

// The tensor whose column entries contain global entry `e` (sorted by col0).
__device__ inline int tensor_of_col(const Factored* list, int count, int64_t e) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (list[mid].col0 <= e) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Moving averages of row and column means of a statistic S + eps:
//   row ← β·row + (1−β)·(Σ_j S_ij / N + eps), col ← β·col + (1−β)·(Σ_i S_ij / M + eps),
// and Σ_i row_i per matrix into `row_totals` (zeroed by the caller). `use_res` picks R, C over r, c.
static __global__ void moving_means_kernel(const Factored* list, int count, int64_t rows, int64_t cols, FactoredSums sums,
                                    float beta, float one_minus_beta, float eps, bool use_res, float* row_totals) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < rows) {
    const Factored& t = list[tensor_of_row(list, count, e)];
    const int64_t local = e - t.row0;
    float* r = (use_res ? t.R : t.r) + local;
    *r = beta * *r + one_minus_beta * (sums.row[e] / static_cast<float>(t.N) + eps);
    atomicAdd(row_totals + t.mat0 + local / t.M, *r);
  } else if (e < rows + cols) {
    const int64_t ce = e - rows;
    const Factored& t = list[tensor_of_col(list, count, ce)];
    float* c = (use_res ? t.C : t.c) + (ce - t.col0);
    *c = beta * *c + one_minus_beta * (sums.col[ce] / static_cast<float>(t.M) + eps);
  }
}

// Σ_ij u_ij² per tensor for u = g·a_i·b_j, a_i = rsqrt(r_i / mean r), b_j = rsqrt(c_j): the
// update-clipping RMS without writing u.
static __global__ void update_squares_kernel(const Factored* list, int count, FactoredSums sums) {
  const RowTask k = row_task(list, count, blockIdx.x);
  const Factored& t = *k.t;
  const int64_t rowi = k.mat * t.M + k.i;
  const float a2 = (sums.mat_a[t.mat0 + k.mat] / static_cast<float>(t.M)) / t.r[rowi];
  const float* g = t.g + k.offset;
  const float* c = t.c + k.mat * t.N;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < t.N; j += blockDim.x) s += g[j] * g[j] / c[j];
  s = block_sum(s);
  if (threadIdx.x == 0) atomicAdd(sums.tensor_a + k.tensor, a2 * s);
}

// The tensor of chunk `k` of a flat launch.
__device__ inline const Flat& flat_of(const Flat* list, const Chunk& k) { return list[k.tensor]; }

}  // namespace vcycle::optim::cuda
