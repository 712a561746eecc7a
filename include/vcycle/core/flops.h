// Model FLOPs, written once.
//
// Per token, for a transformer with L blocks, context T and attention inner width d_attn = H·h:
//   N_mm   = parameters of every matrix multiply (all linear layers + the LM/classifier head, tied or
//            not; embedding lookups, norms and biases excluded). A matmul with a (m × n) weight costs
//            2·m·n FLOPs per token (one multiply and one add per weight).
//   F_fwd  = 2·N_mm + 4·L·T·d_attn. Attention: QKᵀ is (T × h)·(h × T) per head = 2·T·h FLOPs per query
//            token per head, A·V the same, so 2·2·T·H·h per layer per token. Both are counted as full
//            T × T products (no causal halving), as PaLM's MFU accounting does.
//   F_train = 3·F_fwd: the backward pass costs twice the forward (gradients w.r.t. inputs and weights).
// Operators (coalesce, de-coalesce, interpolate) count one FLOP per element they write.
#pragma once

#include <cstdint>

namespace vcycle {

struct FlopShape {
  int64_t matmul_params = 0;  // N_mm
  int64_t layers = 0;         // L
  int64_t context = 0;        // T, tokens per sequence as trained
  int64_t attn_width = 0;     // d_attn = H·h
};

inline double forward_flops_per_token(const FlopShape& s) {
  return 2.0 * static_cast<double>(s.matmul_params) +
         4.0 * static_cast<double>(s.layers) * static_cast<double>(s.context) * static_cast<double>(s.attn_width);
}

inline double train_flops_per_token(const FlopShape& s) { return 3.0 * forward_flops_per_token(s); }

}  // namespace vcycle
