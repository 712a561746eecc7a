// Multi-head self-attention, shared by every built-in family: causal in the GPT decoder, bidirectional
// (unmasked) in the encoders (BERT, ViT); and the attention product itself.
//
// Parameter names, as the parameter maps expect them:
//   qkv.{weight (3·H·h, d), bias (3·H·h)}   — chunks q, k, v in that order
//   proj.{weight (d, H·h), bias (d)}
// Either way the scores are the full T × T product the FLOP formula (flops.h) counts: the causal
// mask hides the future positions after they are computed.
#pragma once

#include <cstdint>
#include <string>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace vcycle {

struct SelfAttentionImpl : torch::nn::Cloneable<SelfAttentionImpl> {
  // `causal`: every query attends to itself and earlier positions only (a decoder).
  SelfAttentionImpl(int64_t hidden, int64_t heads, int64_t head_size, bool causal = false);
  void reset() override;
  // x: (B, T, d) -> (B, T, d). fp32, fp64 and bf16 CPU inputs take fused_attention_qkv
  // (fused_attention.h) unless the ATen kernels are chosen (cpu_kernels.h); the rest `attention`.
  torch::Tensor forward(const torch::Tensor& x);

  int64_t hidden, heads, head_size;
  bool causal;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(SelfAttention);

// softmax(q·kᵀ / sqrt(h))·v over (B, H, T, h) tensors; `causal` masks every future position (the
// GPT decoder's attention). fp32 and fp64 CPU tensors take fused_attention (fused_attention.h)
// unless the ATen kernels are chosen (cpu_kernels.h); other dtypes and devices, and the ATen kernels, take
// LibTorch's SDPA on 2.x and the plain product on 1.13.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal);

}  // namespace vcycle
