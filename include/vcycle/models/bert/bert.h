// BERT encoder for masked-language modelling (Devlin et al. 2019): token + learned position +
// segment (token-type) embeddings summed and normalised (embedding LayerNorm), post-LayerNorm blocks
// (x = LN(x + Attn(x)); x = LN(x + MLP(x)), bidirectional attention, GELU MLP), and the MLM head:
// dense + GELU + LayerNorm, a decoder tied to the token embedding, plus an output bias.
//
// Token ids: 0 … vocab−2 are ordinary tokens (the byte tokenizer's 256 ids), the last id vocab−1 is
// [MASK]; so the byte tokenizer needs vocab >= 257.
//
// Parameter names are stable and dotted; the BERT parameter map depends on them:
//   tok_emb.weight (V, d)   pos_emb.weight (T, d)   seg_emb.weight (S, d)   emb_ln.{weight,bias} (d)
//   blocks.{l}.attn.qkv.{weight (3·H·h, d), bias (3·H·h)}   blocks.{l}.attn.proj.{weight (d, H·h), bias (d)}
//   blocks.{l}.ln1.{weight,bias} (d)      blocks.{l}.mlp.fc.{weight (f, d), bias (f)}
//   blocks.{l}.mlp.proj.{weight (d, f), bias (d)}   blocks.{l}.ln2.{weight,bias} (d)
//   mlm.dense.{weight (d, d), bias (d)}   mlm.ln.{weight,bias} (d)   mlm.bias (V)
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

struct BertConfig {
  int64_t layers = 4;      // L, number of blocks
  int64_t hidden = 256;    // d, residual width
  int64_t heads = 4;       // H, attention heads
  int64_t head_size = 64;  // h; attention inner size is H·h
  int64_t ffn = 1024;      // f, MLP inner width
  int64_t context = 128;   // T, maximum sequence length
  int64_t vocab = 257;     // V, ordinary tokens + [MASK] (the last id)
  int64_t segments = 2;    // S, token types (sentence A / B)

  int64_t mask_id() const { return vocab - 1; }  // the [MASK] token
};

// A post-LayerNorm encoder block.
struct BertBlockImpl : torch::nn::Cloneable<BertBlockImpl> {
  explicit BertBlockImpl(const BertConfig& cfg);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  BertConfig cfg;
  SelfAttention attn{nullptr};
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(BertBlock);

// The MLM head's transform (dense + GELU + LayerNorm) and its output bias; the decoder matrix is the
// token embedding, passed in.
struct MlmHeadImpl : torch::nn::Cloneable<MlmHeadImpl> {
  MlmHeadImpl(int64_t hidden, int64_t vocab);
  void reset() override;
  // x: (…, d), embedding: (V, d) -> logits (…, V).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& embedding);

  int64_t hidden, vocab;
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm ln{nullptr};
  torch::Tensor bias;
};
TORCH_MODULE(MlmHead);

struct BertImpl : torch::nn::Cloneable<BertImpl> {
  explicit BertImpl(const BertConfig& cfg);
  void reset() override;

  // idx: (B, T') int64 token ids with T' <= context; segments: (B, T') token types, or undefined for
  // all zeros (a single segment). Returns MLM logits (B, T', V) at every position.
  torch::Tensor forward(const torch::Tensor& idx, const torch::Tensor& segments = {});
  // Mean cross-entropy over the masked positions: `target` holds the original id where a position was
  // masked and kIgnoreIndex everywhere else.
  torch::Tensor loss(const torch::Tensor& input, const torch::Tensor& target);

  static constexpr int64_t kIgnoreIndex = -100;  // target value of positions that carry no loss

  BertConfig cfg;
  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr}, seg_emb{nullptr};
  torch::nn::LayerNorm emb_ln{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  MlmHead mlm{nullptr};
};
TORCH_MODULE(Bert);

// BERT initialisation: N(0, 0.02) weights and embeddings, zero biases, LayerNorm gains 1. Uses the
// global torch RNG.
void bert_init_weights(BertImpl& model);

}  // namespace vcycle
