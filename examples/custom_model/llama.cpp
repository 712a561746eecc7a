// The LLaMA-style decoder; see llama.h.
#include "llama.h"

#include <cmath>
#include <limits>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>

#include "vcycle/models/lora.h"

namespace llama {

// ---------------------------------------------------------------------------- RMSNorm
RMSNormImpl::RMSNormImpl(int64_t size_, double eps_) : size(size_), eps(eps_) { reset(); }

void RMSNormImpl::reset() { weight = register_parameter("weight", torch::ones({size})); }

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto inv_rms = torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps);  // 1 / rms(x)
  return x * inv_rms * weight;
}

// ---------------------------------------------------------------------------- rotary
torch::Tensor apply_rotary(const torch::Tensor& x, double base) {
  const int64_t t = x.size(-2), h = x.size(-1), half = h / 2;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
  // inv_freq[i] = base^(−2i/h), angle[p, i] = p · inv_freq[i]
  const auto inv_freq = torch::pow(base, torch::arange(0, half, opts) * (-2.0 / static_cast<double>(h)));
  const auto angle = torch::outer(torch::arange(0, t, opts), inv_freq);  // (T, h/2)
  const auto cos = torch::cat({angle.cos(), angle.cos()}, -1).to(x.dtype());
  const auto sin = torch::cat({angle.sin(), angle.sin()}, -1).to(x.dtype());
  const auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);  // rotate_half(x)
  return x * cos + rotated * sin;
}

// ---------------------------------------------------------------------------- attention
AttentionImpl::AttentionImpl(const LlamaConfig& cfg_) : cfg(cfg_) { reset(); }

void AttentionImpl::reset() {
  const int64_t d = cfg.hidden, inner = cfg.heads * cfg.head_size;
  q_proj = register_module("q_proj", torch::nn::Linear(torch::nn::LinearOptions(d, inner).bias(false)));
  k_proj = register_module("k_proj", torch::nn::Linear(torch::nn::LinearOptions(d, inner).bias(false)));
  v_proj = register_module("v_proj", torch::nn::Linear(torch::nn::LinearOptions(d, inner).bias(false)));
  o_proj = register_module("o_proj", torch::nn::Linear(torch::nn::LinearOptions(inner, d).bias(false)));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1), nh = cfg.heads, h = cfg.head_size;
  // (B, T, H·h) -> (B, H, T, h)
  // Projections are called by registered name so that vcycle::lora::inject() can swap them.
  auto split = [&](const torch::Tensor& y) { return y.view({b, t, nh, h}).transpose(1, 2); };
  const auto q = apply_rotary(split(vcycle::lora::linear_forward(*this, "q_proj", x)), cfg.rope_base);
  const auto k = apply_rotary(split(vcycle::lora::linear_forward(*this, "k_proj", x)), cfg.rope_base);
  const auto v = split(vcycle::lora::linear_forward(*this, "v_proj", x));
  // softmax(q·kᵀ / sqrt(h) + causal mask)·v
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(h)));
  const auto future = torch::ones({t, t}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1);
  scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
  const auto y = torch::matmul(torch::softmax(scores, -1), v);  // (B, H, T, h)
  return vcycle::lora::linear_forward(*this, "o_proj", y.transpose(1, 2).reshape({b, t, nh * h}));
}

// ---------------------------------------------------------------------------- SwiGLU
SwiGLUImpl::SwiGLUImpl(int64_t hidden_, int64_t ffn_) : hidden(hidden_), ffn(ffn_) { reset(); }

void SwiGLUImpl::reset() {
  gate_proj = register_module("gate_proj", torch::nn::Linear(torch::nn::LinearOptions(hidden, ffn).bias(false)));
  up_proj = register_module("up_proj", torch::nn::Linear(torch::nn::LinearOptions(hidden, ffn).bias(false)));
  down_proj = register_module("down_proj", torch::nn::Linear(torch::nn::LinearOptions(ffn, hidden).bias(false)));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  const auto gate = vcycle::lora::linear_forward(*this, "gate_proj", x);
  return vcycle::lora::linear_forward(*this, "down_proj", torch::silu(gate) * vcycle::lora::linear_forward(*this, "up_proj", x));
}

// ---------------------------------------------------------------------------- block
DecoderLayerImpl::DecoderLayerImpl(const LlamaConfig& cfg_) : cfg(cfg_) { reset(); }

void DecoderLayerImpl::reset() {
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden, cfg.norm_eps));
  self_attn = register_module("self_attn", Attention(cfg));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.hidden, cfg.norm_eps));
  mlp = register_module("mlp", SwiGLU(cfg.hidden, cfg.ffn));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x) {
  const auto h = x + self_attn->forward(input_layernorm->forward(x));
  return h + mlp->forward(post_attention_layernorm->forward(h));
}

// ---------------------------------------------------------------------------- model
LlamaImpl::LlamaImpl(const LlamaConfig& cfg_) : cfg(cfg_) { reset(); }

void LlamaImpl::reset() {
  TORCH_CHECK(cfg.layers >= 1 && cfg.hidden >= 1 && cfg.heads >= 1 && cfg.ffn >= 1 && cfg.context >= 1 &&
                  cfg.vocab >= 1,
              "Llama: every size must be >= 1 (layers=", cfg.layers, ", hidden=", cfg.hidden, ", heads=", cfg.heads,
              ", ffn=", cfg.ffn, ", context=", cfg.context, ", vocab=", cfg.vocab, ")");
  TORCH_CHECK(cfg.head_size >= 2 && cfg.head_size % 2 == 0, "Llama: head_size must be even (rotary), got ",
              cfg.head_size);
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(cfg.vocab, cfg.hidden));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.layers; ++l) layers->push_back(DecoderLayer(cfg));
  norm = register_module("norm", RMSNorm(cfg.hidden, cfg.norm_eps));
  lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden, cfg.vocab).bias(false)));

  // Initialisation: N(0, 0.02) for every matrix, the two residual projections (o_proj, down_proj)
  // scaled by 1/sqrt(2L); RMSNorm gains stay at 1. Uses the global torch RNG.
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.layers));
  for (auto& item : named_parameters()) {
    auto& p = item.value();
    if (p.dim() < 2) continue;
    const std::string& name = item.key();
    const bool residual = name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
    p.normal_(0.0, residual ? residual_std : 0.02);
  }
}

torch::Tensor LlamaImpl::forward(const torch::Tensor& idx) {
  TORCH_CHECK(idx.dim() == 2, "Llama::forward: idx must be (batch, time), got shape ", idx.sizes());
  TORCH_CHECK(idx.size(1) <= cfg.context, "Llama::forward: sequence length ", idx.size(1), " exceeds context ",
              cfg.context);
  auto x = embed_tokens->forward(idx);
  for (const auto& layer : *layers) x = layer->as<DecoderLayerImpl>()->forward(x);
  return vcycle::lora::linear_forward(*this, "lm_head", norm->forward(x));
}

torch::Tensor LlamaImpl::loss(const torch::Tensor& input, const torch::Tensor& target) {
  const auto logits = forward(input);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}));
}

}  // namespace llama
