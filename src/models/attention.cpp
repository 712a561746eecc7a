// Self-attention, causal or bidirectional; see include/vcycle/models/attention.h.
#include "vcycle/models/attention.h"

#include <cmath>
#include <limits>

#include <torch/version.h>

#include "vcycle/models/cpu_kernels.h"
#include "vcycle/models/fused_attention.h"
#include "vcycle/models/lora.h"

namespace vcycle {

namespace {

// LibTorch's attention, the one seam between its versions: fused SDPA where it exists (2.x).
torch::Tensor attention_aten(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, causal);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)).mul_(scale);
  if (causal) {
    const int64_t t = q.size(-2);
    const auto future = torch::ones({t, t}, q.options().dtype(torch::kBool)).triu_(1);
    scores.masked_fill_(future, -std::numeric_limits<float>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
  if (fused_cpu_kernels_take(q) && fused_cpu_kernels_take(k) && fused_cpu_kernels_take(v)) {
    return fused_attention(q, k, v, causal);
  }
  return attention_aten(q, k, v, causal);
}

SelfAttentionImpl::SelfAttentionImpl(int64_t hidden_, int64_t heads_, int64_t head_size_, bool causal_)
    : hidden(hidden_), heads(heads_), head_size(head_size_), causal(causal_) {
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
  // Linear layers are called by registered name so that lora::inject() can swap them (lora.h).
  // Chunk order q, k, v matches the parameter maps' chunks.
  const auto qkv = lora::linear_forward(*this, "qkv", x);
  torch::Tensor y;
  if (fused_cpu_kernels_take(qkv, /*with_bf16=*/true)) {
    y = fused_attention_qkv(qkv, heads, causal);  // (B, T, H·h) without the head-major copies
  } else {
    // (B, T, 3·H·h) -> 3 × (B, H, T, h). unbind, not three selects: its backward stacks the three
    // gradients in one copy, where each select's would zero a tensor of the whole qkv size.
    const auto parts = qkv.view({b, t, 3, heads, head_size}).permute({2, 0, 3, 1, 4}).unbind(0);
    y = attention(parts[0], parts[1], parts[2], causal).transpose(1, 2).reshape({b, t, heads * head_size});
  }
  return lora::linear_forward(*this, "proj", y);
}

}  // namespace vcycle
