// Layers shared by the built-in families; see include/vcycle/models/layers.h.
#include "vcycle/models/layers.h"

#include "vcycle/models/fused_gelu.h"

#include "vcycle/models/lora.h"

namespace vcycle {

MLPImpl::MLPImpl(int64_t hidden_, int64_t ffn_) : hidden(hidden_), ffn(ffn_) { reset(); }

void MLPImpl::reset() {
  fc = register_module("fc", torch::nn::Linear(hidden, ffn));
  proj = register_module("proj", torch::nn::Linear(ffn, hidden));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  // By registered name, so that lora::inject() can swap the layers (lora.h).
  return lora::linear_forward(*this, "proj", vcycle::gelu(lora::linear_forward(*this, "fc", x)));
}

void init_gain_or_bias(const std::string& name, torch::Tensor& p) {
  if (name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0) p.fill_(1.0);
  else p.zero_();
}

}  // namespace vcycle
