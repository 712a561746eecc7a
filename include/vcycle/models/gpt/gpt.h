// GPT decoder: token + learned position embeddings, pre-LayerNorm blocks (fused QKV, causal
// self-attention, output projection, GELU MLP), final LayerNorm, LM head tied to the token
// embedding unless `tied_embeddings` is false.
//
// Parameter names are stable and dotted; the operators' GPT parameter map depends on them:
//   tok_emb.weight (V, d)            pos_emb.weight (T, d)
//   blocks.{l}.ln1.{weight,bias} (d) blocks.{l}.attn.qkv.{weight (3·H·h, d), bias (3·H·h)}
//   blocks.{l}.attn.proj.{weight (d, H·h), bias (d)}
//   blocks.{l}.ln2.{weight,bias} (d) blocks.{l}.mlp.fc.{weight (f, d), bias (f)}
//   blocks.{l}.mlp.proj.{weight (d, f), bias (d)}
//   ln_f.{weight,bias} (d)           head.weight (V, d)   — only when untied
#pragma once

#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "vcycle/models/attention.h"
#include "vcycle/models/layers.h"

namespace vcycle {

struct GPTConfig {
  int64_t layers = 4;           // L, number of blocks
  int64_t hidden = 256;         // d, residual width
  int64_t heads = 4;            // H, attention heads
  int64_t head_size = 64;       // h; attention inner size is H·h (need not equal d after coalescing)
  int64_t ffn = 1024;           // f, MLP inner width
  int64_t context = 128;        // T, maximum sequence length
  int64_t vocab = 256;          // V
  bool tied_embeddings = true;  // LM head reuses tok_emb.weight
};

// A pre-LayerNorm decoder block: x + Attn(LN(x)), then h + MLP(LN(h)); the attention is causal.
struct BlockImpl : torch::nn::Cloneable<BlockImpl> {
  explicit BlockImpl(const GPTConfig& cfg);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  GPTConfig cfg;
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  SelfAttention attn{nullptr};  // causal
  MLP mlp{nullptr};
};
TORCH_MODULE(Block);

struct GPTImpl : torch::nn::Cloneable<GPTImpl> {
  explicit GPTImpl(const GPTConfig& cfg);
  void reset() override;

  // idx: (B, T') int64 token ids with T' <= context. Returns logits (B, T', V).
  torch::Tensor forward(const torch::Tensor& idx);
  // Mean next-token cross-entropy of forward(input) against target (both (B, T')).
  torch::Tensor loss(const torch::Tensor& input, const torch::Tensor& target);

  GPTConfig cfg;
  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear head{nullptr};  // null when tied
};
TORCH_MODULE(GPT);

// GPT-2-style initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by
// 1/sqrt(2L). Uses the global torch RNG; seed it first for reproducible weights.
void gpt_init_weights(GPTImpl& model);

}  // namespace vcycle
