// Fused CPU kernels for CAME, LAMB and Adafactor on contiguous fp32 tensors (private to src/optim).
//
// A factored parameter is B matrices of M×N floats, row-major. The kernels split rows into blocks
// chosen from the shape alone and combine per-block partial sums in a fixed order, so results are
// bitwise reproducible and do not depend on the number of threads.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace vcycle::optim::detail {

// True when the fused kernels are switched on and every tensor is a contiguous fp32 CPU tensor.
bool fused_ok(std::initializer_list<const torch::Tensor*> tensors);

// Hyperparameters of one CAME update, as floats. The 1 − β are rounded from double: 1.f − 0.9999f
// would be off by 2e-4 relative.
struct CameStep {
  float beta1, beta2, beta3;  // moment rates
  float one_minus_beta1, one_minus_beta2, one_minus_beta3;
  float eps1, eps2;           // added to G² and to the instability
  float clip;                 // d
  float lr;                   // η
  float decay;                // 1 − η·λ
};

// CAME on a factored parameter: w, g, m are B×M×N; r, R are B×M; c, C are B×N. Updates w, m, r,
// c, R, C in place.
void came_factored(float* w, const float* g, float* m, float* r, float* c, float* R, float* C, int64_t B,
                   int64_t M, int64_t N, const CameStep& h);

// CAME on a 1-D (or 0-D) parameter of n entries: updates w, m, v in place.
void came_vector(float* w, const float* g, float* m, float* v, int64_t n, const CameStep& h);

// Hyperparameters of one Adafactor update, as floats.
struct AdafactorStep {
  float beta2;   // β2ₜ
  float one_minus_beta2;
  float eps1;    // added to G²
  float clip;    // d
  float alpha;   // α, the step size
  float beta1;   // 0: no first moment (m is null)
  float one_minus_beta1;
  float decay;   // 1 − λ·α
};

// Adafactor on a factored parameter (m may be null when beta1 is 0).
void adafactor_factored(float* w, const float* g, float* m, float* r, float* c, int64_t B, int64_t M, int64_t N,
                        const AdafactorStep& h);

// Adafactor on a 1-D (or 0-D) parameter of n entries (m may be null when beta1 is 0).
void adafactor_vector(float* w, const float* g, float* m, float* v, int64_t n, const AdafactorStep& h);

// Hyperparameters of one LAMB update, as floats.
struct LambStep {
  float beta1, beta2;
  float one_minus_beta1, one_minus_beta2;
  float bc1, bc2;        // 1 − βᵗ, or 1 without bias correction
  float eps;
  float weight_decay;    // λ, added to the update
  bool trust_ratio;      // layer adaptation
  float lr;              // η
};

// LAMB on a parameter of n entries (any shape, contiguous): updates w, m, v in place.
void lamb_update(float* w, const float* g, float* m, float* v, int64_t n, const LambStep& h);

}  // namespace vcycle::optim::detail
