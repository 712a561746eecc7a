// Multi-tensor CUDA kernels for CAME, LAMB and Adafactor (built with VCYCLE_WITH_CUDA only).
//
// Plain C++ on both sides: the kernels (src/optim/cuda/*.cu, compiled by nvcc) see raw fp32 device
// pointers and never include LibTorch; src/optim/cuda/optim_cuda.cpp turns a group's parameters into
// these descriptors. One launch of each kernel updates every tensor of the list, which is what makes
// a GPT step with ~150 small tensors cheap: the per-tensor ATen path launches ~15 kernels per tensor.
//
// Work is cut into tasks that never straddle two tensors, so each thread block reduces within one
// tensor and adds its partial sum with a single atomic. Float atomics make sums order-dependent:
// results agree with the reference (ATen) path to float rounding, not bitwise.
#pragma once

#include <cstdint>

namespace vcycle::optim::cuda {

// A parameter with dim >= 2, seen as B matrices of M×N (row-major, contiguous).
struct Factored {
  float* w;
  const float* g;
  float* m;        // first moment; null for Adafactor without β1
  float* r;        // second-moment row statistic, B×M
  float* c;        // second-moment column statistic, B×N
  float* R;        // CAME: instability row statistic, B×M (null otherwise)
  float* C;        // CAME: instability column statistic, B×N (null otherwise)
  int64_t B, M, N;
  int64_t row0;    // offset of this tensor's rows in the launch's row workspace (Σ B·M before it)
  int64_t col0;    // offset of its column entries (Σ B·N before it)
  int64_t mat0;    // offset of its matrices (Σ B before it)
};

// A parameter with dim < 2 (or any parameter, for LAMB), as n contiguous floats.
struct Flat {
  float* w;
  const float* g;
  float* m;        // first moment (may be null for Adafactor)
  float* v;        // second moment
  int64_t n;
  float weight_decay;   // LAMB: λ for this tensor (0 when excluded)
  int trust_ratio;      // LAMB: 1 when layer adaptation applies
};

// A block's share of a Flat tensor: entries [begin, begin + length) of tensor `tensor`.
struct Chunk {
  int tensor;
  int64_t begin, length;
};
constexpr int64_t kChunkSize = 4096;

struct CameHyper {
  float beta1, beta2, beta3, one_minus_beta1, one_minus_beta2, one_minus_beta3;
  float eps1, eps2, clip, lr, decay;  // decay = 1 − η·λ
};

struct LambHyper {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float bias_correction1, bias_correction2;  // 1 − βᵗ (1 when bias correction is off)
  float eps, lr;
};

struct AdafactorHyper {
  float beta1, one_minus_beta1;  // beta1 == 0: no first moment
  float beta2, one_minus_beta2;  // β2ₜ of this step
  float eps1, eps2, clip;
  float rho;                     // relative or given step size
  int scale_parameter;
  float weight_decay;
};

// Device workspace, in floats, for a launch over `count` Factored tensors with the given totals:
// row sums, column sums, two per-matrix sums and two per-tensor sums.
inline int64_t factored_workspace_floats(int64_t rows, int64_t cols, int64_t mats, int64_t count) {
  return rows + cols + 2 * mats + 2 * count;
}
inline int64_t flat_workspace_floats(int64_t count) { return 2 * count; }

// `list`, `chunks`: device arrays. `workspace`: device floats of the size above. `stream`: a
// cudaStream_t. All entry points are asynchronous on that stream.
void came_factored(const Factored* list, int count, int64_t rows, int64_t cols, int64_t mats,
                   const CameHyper& h, float* workspace, void* stream);
void came_flat(const Flat* list, int count, const Chunk* chunks, int64_t chunk_count, const CameHyper& h,
               float* workspace, void* stream);
void lamb_flat(const Flat* list, int count, const Chunk* chunks, int64_t chunk_count, const LambHyper& h,
               float* workspace, void* stream);
void adafactor_factored(const Factored* list, int count, int64_t rows, int64_t cols, int64_t mats,
                        const AdafactorHyper& h, float* workspace, void* stream);
void adafactor_flat(const Flat* list, int count, const Chunk* chunks, int64_t chunk_count,
                    const AdafactorHyper& h, float* workspace, void* stream);

}  // namespace vcycle::optim::cuda
