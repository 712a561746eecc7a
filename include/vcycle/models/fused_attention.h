// Fused CPU attention: softmax(q·kᵀ / sqrt(h))·v over (B, H, T, h) tensors without the T × T
// score matrix, forward and backward (flash-attention style).
//
//   auto y = vcycle::fused_attention(q, k, v, /*causal=*/true);  // differentiable in q, k and v
//
// Forward walks each head's queries in tiles; for a tile it visits the key tiles one by one with an
// online softmax (a running row maximum and row sum rescale what was accumulated so far), so only
// a tile of scores ever exists. With `causal`, key tiles wholly in a query tile's future are
// skipped: half the products of the masked computation. The per-row logsumexp is kept, and
// backward recomputes each tile's probabilities from it (dq, dk, dv; D_i = rowsum(dO ∘ O)).
//
// Dtypes: float and double are computed in their own type; BFloat16 and Half in float, the result
// in the input dtype. Mixed input dtypes are promoted. Inputs of shape (..., T, h) with any strides
// are accepted; (B, H, T, h) views with a contiguous last dim (SelfAttention's q, k, v) are read in
// place, not copied. CPU tensors only; vcycle::attention (attention.h) picks this kernel for CPU
// tensors unless the ATen kernels are chosen.
#pragma once

#include <torch/types.h>

namespace vcycle {

torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal);

// The same from a qkv projection's output (B, T, 3·H·h), chunks q, k, v in that order, to
// (B, T, H·h), the output projection's input: q, k and v are read where they lie, the output is
// written in the layout the projection takes, and the gradient is one (B, T, 3·H·h) tensor, so
// neither direction copies between the head-major and the token-major layout. Differentiable in qkv.
torch::Tensor fused_attention_qkv(const torch::Tensor& qkv, int64_t heads, bool causal);

}  // namespace vcycle
