// ViT / DeiT classifier; see include/vcycle/models/vit/vit.h.
#include "vcycle/models/vit/vit.h"

#include <torch/nn/functional/loss.h>

#include "vcycle/models/lora.h"

namespace vcycle {

torch::Tensor vit_patchify(const torch::Tensor& images, int64_t patch) {
  TORCH_CHECK(images.dim() == 4 && images.size(2) % patch == 0 && images.size(3) % patch == 0,
              "vit_patchify: images must be (batch, channels, H, W) with H and W divisible by the patch ", patch,
              ", got shape ", images.sizes());
  const int64_t b = images.size(0), c = images.size(1), gh = images.size(2) / patch, gw = images.size(3) / patch;
  // (B, C, gh, p, gw, p) -> (B, gh, gw, C, p, p) -> (B, gh·gw, C·p·p)
  return images.reshape({b, c, gh, patch, gw, patch}).permute({0, 2, 4, 1, 3, 5}).reshape({b, gh * gw, c * patch * patch});
}

// ---------------------------------------------------------------------------- block
ViTBlockImpl::ViTBlockImpl(const ViTConfig& cfg_) : cfg(cfg_) { reset(); }

void ViTBlockImpl::reset() {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden}).eps(1e-6)));
  attn = register_module("attn", SelfAttention(cfg.hidden, cfg.heads, cfg.head_size));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden}).eps(1e-6)));
  mlp = register_module("mlp", MLP(cfg.hidden, cfg.ffn));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attn->forward(ln1->forward(x));
  return h + mlp->forward(ln2->forward(h));
}

// ---------------------------------------------------------------------------- ViT
ViTImpl::ViTImpl(const ViTConfig& cfg_) : cfg(cfg_) { reset(); }

void ViTImpl::reset() {
  TORCH_CHECK(cfg.image_size >= 1 && cfg.patch >= 1 && cfg.channels >= 1 && cfg.classes >= 1 && cfg.layers >= 1 &&
                  cfg.hidden >= 1 && cfg.heads >= 1 && cfg.head_size >= 1 && cfg.ffn >= 1,
              "ViT: every size must be >= 1 (image_size=", cfg.image_size, ", patch=", cfg.patch, ", channels=",
              cfg.channels, ", classes=", cfg.classes, ", layers=", cfg.layers, ", hidden=", cfg.hidden, ", heads=",
              cfg.heads, ", head_size=", cfg.head_size, ", ffn=", cfg.ffn, ")");
  TORCH_CHECK(cfg.image_size % cfg.patch == 0, "ViT: image_size ", cfg.image_size, " is not divisible by patch ",
              cfg.patch);
  patch_emb = register_module("patch_emb", torch::nn::Linear(cfg.channels * cfg.patch * cfg.patch, cfg.hidden));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, cfg.hidden}));
  pos_emb = register_parameter("pos_emb", torch::zeros({1, cfg.tokens(), cfg.hidden}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.layers; ++l) blocks->push_back(ViTBlock(cfg));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.hidden}).eps(1e-6)));
  head = register_module("head", torch::nn::Linear(cfg.hidden, cfg.classes));
  vit_init_weights(*this);
}

torch::Tensor ViTImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == cfg.channels && images.size(2) == cfg.image_size &&
                  images.size(3) == cfg.image_size,
              "ViT::forward: images must be (batch, ", cfg.channels, ", ", cfg.image_size, ", ", cfg.image_size,
              "), got shape ", images.sizes());
  const int64_t b = images.size(0);
  // Linear layers by registered name, so that lora::inject() can swap them (lora.h).
  auto x = lora::linear_forward(*this, "patch_emb", vit_patchify(images, cfg.patch));  // (B, N, d)
  x = torch::cat({cls_token.expand({b, 1, cfg.hidden}), x}, 1) + pos_emb;  // (B, N+1, d)
  for (const auto& block : *blocks) x = block->as<ViTBlockImpl>()->forward(x);
  return lora::linear_forward(*this, "head", ln_f->forward(x.select(1, 0)));  // the class token's state
}

torch::Tensor ViTImpl::loss(const torch::Tensor& images, const torch::Tensor& labels) {
  return torch::nn::functional::cross_entropy(forward(images), labels);
}

void vit_init_weights(ViTImpl& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    if (name == "cls_token" || name == "pos_emb" || p.dim() >= 2) {
      p.normal_(0.0, 0.02);
    } else {
      init_gain_or_bias(name, p);
    }
  }
}

}  // namespace vcycle
