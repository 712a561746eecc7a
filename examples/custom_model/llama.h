// A LLaMA-style decoder, written for this example independently of vcycle's built-in GPT: token
// embedding (no position embedding), pre-RMSNorm blocks with separate q/k/v/o projections and rotary
// position embeddings, a SwiGLU MLP, a final RMSNorm and an untied LM head. No biases anywhere.
//
// Parameter names (llama_adapter.cpp's parameter map depends on them; H·h = heads × head_size):
//   embed_tokens.weight (V, d)
//   layers.{l}.input_layernorm.weight (d)        layers.{l}.post_attention_layernorm.weight (d)
//   layers.{l}.self_attn.{q,k,v}_proj.weight (H·h, d)   layers.{l}.self_attn.o_proj.weight (d, H·h)
//   layers.{l}.mlp.{gate,up}_proj.weight (f, d)          layers.{l}.mlp.down_proj.weight (d, f)
//   norm.weight (d)                              lm_head.weight (V, d)
// Rotary embeddings have no parameters or buffers: their angles are computed from the positions.
#pragma once

#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace llama {

struct LlamaConfig {
  int64_t layers = 4;          // L, decoder blocks
  int64_t hidden = 256;        // d, residual width
  int64_t heads = 4;           // H, attention heads
  int64_t head_size = 64;      // h (even: rotary rotates pairs of features)
  int64_t ffn = 688;           // f, SwiGLU inner width
  int64_t context = 128;       // T, longest sequence
  int64_t vocab = 256;         // V
  double rope_base = 10000.0;  // rotary frequency base θ
  double norm_eps = 1e-5;      // RMSNorm ε
};

// y = x / sqrt(mean(x²) + ε) · γ over the last axis. The mean of squares of k stacked copies of x
// equals that of x, so width de-coalescing keeps it exact, like LayerNorm.
struct RMSNormImpl : torch::nn::Cloneable<RMSNormImpl> {
  RMSNormImpl(int64_t size, double eps);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t size;
  double eps;
  torch::Tensor weight;  // γ (d)
};
TORCH_MODULE(RMSNorm);

// Causal self-attention with rotary position embeddings on q and k.
struct AttentionImpl : torch::nn::Cloneable<AttentionImpl> {
  explicit AttentionImpl(const LlamaConfig& cfg);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  LlamaConfig cfg;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(Attention);

// down(silu(gate(x)) ⊙ up(x)).
struct SwiGLUImpl : torch::nn::Cloneable<SwiGLUImpl> {
  SwiGLUImpl(int64_t hidden, int64_t ffn);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t hidden, ffn;
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(SwiGLU);

struct DecoderLayerImpl : torch::nn::Cloneable<DecoderLayerImpl> {
  explicit DecoderLayerImpl(const LlamaConfig& cfg);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  LlamaConfig cfg;
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  SwiGLU mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

struct LlamaImpl : torch::nn::Cloneable<LlamaImpl> {
  explicit LlamaImpl(const LlamaConfig& cfg);
  void reset() override;

  // idx: (B, T') int64 token ids, T' <= context. Returns logits (B, T', V).
  torch::Tensor forward(const torch::Tensor& idx);
  // Mean next-token cross-entropy of forward(input) against target (both (B, T')).
  torch::Tensor loss(const torch::Tensor& input, const torch::Tensor& target);

  LlamaConfig cfg;
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};
};
TORCH_MODULE(Llama);

// q or k of shape (B, H, T, h) rotated by position (rotate-half form): x·cos + rotate_half(x)·sin.
torch::Tensor apply_rotary(const torch::Tensor& x, double base);

}  // namespace llama
