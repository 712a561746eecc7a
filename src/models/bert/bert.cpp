// BERT encoder with its MLM head; see include/vcycle/models/bert/bert.h.
#include "vcycle/models/bert/bert.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>

#include "vcycle/models/fused_gelu.h"
#include "vcycle/models/lora.h"

namespace vcycle {

// ---------------------------------------------------------------------------- block
BertBlockImpl::BertBlockImpl(const BertConfig& cfg_) : cfg(cfg_) { reset(); }

void BertBlockImpl::reset() {
  attn = register_module("attn", SelfAttention(cfg.hidden, cfg.heads, cfg.head_size));
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden}).eps(1e-12)));
  mlp = register_module("mlp", MLP(cfg.hidden, cfg.ffn));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden}).eps(1e-12)));
}

torch::Tensor BertBlockImpl::forward(const torch::Tensor& x) {
  // Post-LN: the norm sits on the residual stream after each sum.
  auto h = ln1->forward(x + attn->forward(x));
  return ln2->forward(h + mlp->forward(h));
}

// ---------------------------------------------------------------------------- MLM head
MlmHeadImpl::MlmHeadImpl(int64_t hidden_, int64_t vocab_) : hidden(hidden_), vocab(vocab_) { reset(); }

void MlmHeadImpl::reset() {
  dense = register_module("dense", torch::nn::Linear(hidden, hidden));
  ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden}).eps(1e-12)));
  bias = register_parameter("bias", torch::zeros({vocab}));
}

torch::Tensor MlmHeadImpl::forward(const torch::Tensor& x, const torch::Tensor& embedding) {
  TORCH_CHECK(embedding.dim() == 2 && embedding.size(0) == vocab && embedding.size(1) == hidden,
              "MlmHead: decoder embedding must be (", vocab, ", ", hidden, "), got shape ", embedding.sizes());
  // By registered name, so that lora::inject() can swap the layer (lora.h).
  // Under bf16 autocast the GELU output stays bf16, and LibTorch 1.13's CPU LayerNorm refuses an input
  // whose dtype differs from its weight's; the blocks never hit this, their residual sums are fp32.
  auto z = ln->forward(vcycle::gelu(lora::linear_forward(*this, "dense", x)).to(ln->weight.scalar_type()));
  return torch::matmul(z, embedding.t()) + bias;
}

// ---------------------------------------------------------------------------- BERT
BertImpl::BertImpl(const BertConfig& cfg_) : cfg(cfg_) { reset(); }

void BertImpl::reset() {
  TORCH_CHECK(cfg.layers >= 1 && cfg.hidden >= 1 && cfg.heads >= 1 && cfg.head_size >= 1 && cfg.ffn >= 1 &&
                  cfg.context >= 1 && cfg.vocab >= 2 && cfg.segments >= 1,
              "BERT: every size must be >= 1 and vocab >= 2 (layers=", cfg.layers, ", hidden=", cfg.hidden,
              ", heads=", cfg.heads, ", head_size=", cfg.head_size, ", ffn=", cfg.ffn, ", context=", cfg.context,
              ", vocab=", cfg.vocab, ", segments=", cfg.segments, ")");
  tok_emb = register_module("tok_emb", torch::nn::Embedding(cfg.vocab, cfg.hidden));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(cfg.context, cfg.hidden));
  seg_emb = register_module("seg_emb", torch::nn::Embedding(cfg.segments, cfg.hidden));
  emb_ln = register_module("emb_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden}).eps(1e-12)));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.layers; ++l) blocks->push_back(BertBlock(cfg));
  mlm = register_module("mlm", MlmHead(cfg.hidden, cfg.vocab));
  bert_init_weights(*this);
}

torch::Tensor BertImpl::forward(const torch::Tensor& idx, const torch::Tensor& segments) {
  TORCH_CHECK(idx.dim() == 2, "BERT::forward: idx must be (batch, time), got shape ", idx.sizes());
  const int64_t t = idx.size(1);
  TORCH_CHECK(t <= cfg.context, "BERT::forward: sequence length ", t, " exceeds context ", cfg.context);
  TORCH_CHECK(!segments.defined() || segments.sizes() == idx.sizes(), "BERT::forward: segments must have idx's shape ",
              idx.sizes(), ", got ", segments.sizes());
  auto pos = torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(idx.device()));
  auto seg = segments.defined() ? seg_emb->forward(segments) : seg_emb->weight[0];  // one segment: row 0 everywhere
  auto x = emb_ln->forward(tok_emb->forward(idx) + pos_emb->forward(pos) + seg);
  for (const auto& block : *blocks) x = block->as<BertBlockImpl>()->forward(x);
  return mlm->forward(x, tok_emb->weight);
}

torch::Tensor BertImpl::loss(const torch::Tensor& input, const torch::Tensor& target) {
  auto logits = forward(input);
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), target.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex));
}

void bert_init_weights(BertImpl& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    if (p.dim() < 2) {
      init_gain_or_bias(name, p);  // the MLM output bias too
    } else {
      p.normal_(0.0, 0.02);
    }
  }
}

}  // namespace vcycle
