// Bidirectional self-attention; see include/vcycle/model/attention.h.
#include "vcycle/model/attention.h"

#include <cmath>

#include <torch/version.h>

namespace vcycle {

torch::Tensor attention_unmasked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/false);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  return torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-2, -1)).mul_(scale), -1), v);
#endif
}

SelfAttentionImpl::SelfAttentionImpl(int64_t hidden_, int64_t heads_, int64_t head_size_)
    : hidden(hidden_), heads(heads_), head_size(head_size_) {
  reset();
}

void SelfAttentionImpl::reset() {
  qkv = register_module("qkv", torch::nn::Linear(hidden, 3 * heads * head_size));
  proj = register_module("proj", torch::nn::Linear(heads * head_size, hidden));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == hidden, "SelfAttention: x must be (batch, time, ", hidden, "), got shape ",
              x.sizes());
  const int64_t b = x.size(0), t = x.size(1);
  // (B, T, 3·H·h) -> 3 × (B, H, T, h); chunk order q, k, v matches the parameter maps' chunks.
  auto parts = qkv->forward(x).view({b, t, 3, heads, head_size}).permute({2, 0, 3, 1, 4});
  auto y = attention_unmasked(parts[0], parts[1], parts[2]);
  return proj->forward(y.transpose(1, 2).reshape({b, t, heads * head_size}));
}

}  // namespace vcycle
