// GPT decoder; see include/vcycle/models/gpt/gpt.h.
#include "vcycle/models/gpt/gpt.h"

#include <cmath>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>

#include "vcycle/models/lora.h"
#include "vcycle/models/attention.h"

namespace vcycle {

// ---------------------------------------------------------------------------- attention
CausalSelfAttentionImpl::CausalSelfAttentionImpl(int64_t hidden_, int64_t heads_, int64_t head_size_)
    : hidden(hidden_), heads(heads_), head_size(head_size_) {
  reset();
}

void CausalSelfAttentionImpl::reset() {
  qkv = register_module("qkv", torch::nn::Linear(hidden, 3 * heads * head_size));
  proj = register_module("proj", torch::nn::Linear(heads * head_size, hidden));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1);
  // (B, T, 3·H·h) -> 3 × (B, H, T, h); chunk order q, k, v matches the parameter map's chunks.
  // Linear layers are called by registered name so that lora::inject() can swap them (lora.h).
  auto parts = lora::linear_forward(*this, "qkv", x).view({b, t, 3, heads, head_size}).permute({2, 0, 3, 1, 4});
  auto y = attention(parts[0], parts[1], parts[2], /*causal=*/true);
  return lora::linear_forward(*this, "proj", y.transpose(1, 2).reshape({b, t, heads * head_size}));
}

// ---------------------------------------------------------------------------- MLP
MLPImpl::MLPImpl(int64_t hidden_, int64_t ffn_) : hidden(hidden_), ffn(ffn_) { reset(); }

void MLPImpl::reset() {
  fc = register_module("fc", torch::nn::Linear(hidden, ffn));
  proj = register_module("proj", torch::nn::Linear(ffn, hidden));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  return lora::linear_forward(*this, "proj", torch::gelu(lora::linear_forward(*this, "fc", x)));
}

// ---------------------------------------------------------------------------- block
BlockImpl::BlockImpl(const GPTConfig& cfg_) : cfg(cfg_) { reset(); }

void BlockImpl::reset() {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden})));
  attn = register_module("attn", CausalSelfAttention(cfg.hidden, cfg.heads, cfg.head_size));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden})));
  mlp = register_module("mlp", MLP(cfg.hidden, cfg.ffn));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attn->forward(ln1->forward(x));
  return h + mlp->forward(ln2->forward(h));
}

// ---------------------------------------------------------------------------- GPT
GPTImpl::GPTImpl(const GPTConfig& cfg_) : cfg(cfg_) { reset(); }

void GPTImpl::reset() {
  TORCH_CHECK(cfg.layers >= 1 && cfg.hidden >= 1 && cfg.heads >= 1 && cfg.head_size >= 1 && cfg.ffn >= 1 &&
                  cfg.context >= 1 && cfg.vocab >= 1,
              "GPT: every size must be >= 1 (layers=", cfg.layers, ", hidden=", cfg.hidden, ", heads=", cfg.heads,
              ", head_size=", cfg.head_size, ", ffn=", cfg.ffn, ", context=", cfg.context, ", vocab=", cfg.vocab, ")");
  tok_emb = register_module("tok_emb", torch::nn::Embedding(cfg.vocab, cfg.hidden));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(cfg.context, cfg.hidden));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.layers; ++l) blocks->push_back(Block(cfg));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden})));
  head = nullptr;
  if (!cfg.tied_embeddings) {
    head = register_module("head", torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden, cfg.vocab).bias(false)));
  }
  gpt_init_weights(*this);
}

torch::Tensor GPTImpl::forward(const torch::Tensor& idx) {
  TORCH_CHECK(idx.dim() == 2, "GPT::forward: idx must be (batch, time), got shape ", idx.sizes());
  const int64_t t = idx.size(1);
  TORCH_CHECK(t <= cfg.context, "GPT::forward: sequence length ", t, " exceeds context ", cfg.context);
  auto pos = torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(idx.device()));
  auto x = tok_emb->forward(idx) + pos_emb->forward(pos);
  for (const auto& block : *blocks) x = block->as<BlockImpl>()->forward(x);
  x = ln_f->forward(x);
  return cfg.tied_embeddings ? torch::matmul(x, tok_emb->weight.t()) : lora::linear_forward(*this, "head", x);
}

torch::Tensor GPTImpl::loss(const torch::Tensor& input, const torch::Tensor& target) {
  auto logits = forward(input);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}));
}

void gpt_init_weights(GPTImpl& model) {
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(model.cfg.layers));
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    if (p.dim() < 2) {
      // LayerNorm gains start at 1, every bias at 0.
      if (name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0) p.fill_(1.0);
      else p.zero_();
    } else {
      const bool residual = name.find("attn.proj.weight") != std::string::npos ||
                            name.find("mlp.proj.weight") != std::string::npos;
      p.normal_(0.0, residual ? residual_std : 0.02);
    }
  }
}

}  // namespace vcycle
