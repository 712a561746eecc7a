// GPT decoder; see include/vcycle/models/gpt/gpt.h.
#include "vcycle/models/gpt/gpt.h"

#include <cmath>

#include <torch/nn/functional/loss.h>
#include <torch/nn/init.h>

#include "vcycle/models/lora.h"

namespace vcycle {

// ---------------------------------------------------------------------------- block
BlockImpl::BlockImpl(const GPTConfig& cfg_) : cfg(cfg_) { reset(); }

void BlockImpl::reset() {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden})));
  attn = register_module("attn", SelfAttention(cfg.hidden, cfg.heads, cfg.head_size, /*causal=*/true));
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
      init_gain_or_bias(name, p);
    } else {
      const bool residual = name.find("attn.proj.weight") != std::string::npos ||
                            name.find("mlp.proj.weight") != std::string::npos;
      p.normal_(0.0, residual ? residual_std : 0.02);
    }
  }
}

}  // namespace vcycle
