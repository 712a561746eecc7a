// The built-in models' parameter names, their order and a seeded model's numbers are pinned: old
// checkpoints load by these names, and a seeded run initialises in this order (the global RNG is
// drawn parameter by parameter), so a refactor of the layers must leave all three unchanged. The
// expected sums were computed before the three families came to share their attention and MLP.

#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vcycle/models/bert/bert.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/vit/vit.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

namespace {

// "name shape, name shape, ..." in registration order: the order the init functions draw in.
std::string names_and_shapes(const torch::nn::Module& model) {
  std::ostringstream out;
  for (const auto& item : model.named_parameters()) out << item.key() << " " << item.value().sizes() << ", ";
  return out.str();
}

// Σ_i (i + 1)·sum(p_i) over the parameters in order, in float64: sensitive to values and to order.
double weighted_sum(const torch::nn::Module& model) {
  double s = 0;
  int64_t i = 0;
  for (const auto& item : model.named_parameters()) s += static_cast<double>(++i) * item.value().to(torch::kDouble).sum().item<double>();
  return s;
}

double abs_sum(const torch::Tensor& t) { return t.to(torch::kDouble).abs().sum().item<double>(); }

// The names of one standard block's parameters under `blocks.<l>.`, in `order` (module names).
std::string block_names(int l, const std::vector<std::string>& order, int64_t d, int64_t attn, int64_t f) {
  std::ostringstream out;
  const std::string p = "blocks." + std::to_string(l) + ".";
  for (const auto& m : order) {
    if (m == "ln1" || m == "ln2") {
      out << p << m << ".weight [" << d << "], " << p << m << ".bias [" << d << "], ";
    } else if (m == "attn") {
      out << p << "attn.qkv.weight [" << 3 * attn << ", " << d << "], " << p << "attn.qkv.bias [" << 3 * attn << "], "
          << p << "attn.proj.weight [" << d << ", " << attn << "], " << p << "attn.proj.bias [" << d << "], ";
    } else {
      out << p << "mlp.fc.weight [" << f << ", " << d << "], " << p << "mlp.fc.bias [" << f << "], " << p
          << "mlp.proj.weight [" << d << ", " << f << "], " << p << "mlp.proj.bias [" << d << "], ";
    }
  }
  return out.str();
}

}  // namespace

TEST_CASE("seeded GPT: parameter names, order, initial values and output are pinned", "[model][gpt][pinned]") {
  vcycle::GPTConfig cfg;
  cfg.layers = 2; cfg.hidden = 16; cfg.heads = 2; cfg.head_size = 8; cfg.ffn = 32; cfg.context = 8; cfg.vocab = 20;
  for (bool tied : {true, false}) {
    INFO((tied ? "tied" : "untied"));
    cfg.tied_embeddings = tied;
    torch::manual_seed(1234);
    vcycle::GPT model(cfg);
    const std::vector<std::string> pre_ln{"ln1", "attn", "ln2", "mlp"};
    CHECK(names_and_shapes(*model) == "tok_emb.weight [20, 16], pos_emb.weight [8, 16], " + block_names(0, pre_ln, 16, 16, 32) +
                                          block_names(1, pre_ln, 16, 16, 32) + "ln_f.weight [16], ln_f.bias [16], " +
                                          (tied ? "" : "head.weight [20, 16], "));
    torch::NoGradGuard no_grad;
    const auto logits = model->forward(torch::arange(14, torch::kLong).remainder(20).view({2, 7}));
    CHECK(weighted_sum(*model) == Approx(tied ? 1219.9034919970391 : 1237.9824254082421).epsilon(0).margin(1e-9));
    CHECK(abs_sum(logits) == Approx(tied ? 19.752866093229386 : 17.042238304740749).epsilon(1e-5));
  }
}

TEST_CASE("seeded BERT: parameter names, order, initial values and output are pinned", "[model][bert][pinned]") {
  vcycle::BertConfig cfg;
  cfg.layers = 2; cfg.hidden = 16; cfg.heads = 2; cfg.head_size = 8; cfg.ffn = 32; cfg.context = 8; cfg.vocab = 21;
  torch::manual_seed(1234);
  vcycle::Bert model(cfg);
  const std::vector<std::string> post_ln{"attn", "ln1", "mlp", "ln2"};
  CHECK(names_and_shapes(*model) ==
        "tok_emb.weight [21, 16], pos_emb.weight [8, 16], seg_emb.weight [2, 16], emb_ln.weight [16], emb_ln.bias [16], " +
            block_names(0, post_ln, 16, 16, 32) + block_names(1, post_ln, 16, 16, 32) +
            "mlm.bias [21], mlm.dense.weight [16, 16], mlm.dense.bias [16], mlm.ln.weight [16], mlm.ln.bias [16], ");
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(torch::arange(14, torch::kLong).remainder(20).view({2, 7}));
  CHECK(weighted_sum(*model) == Approx(1858.8395199578863).epsilon(0).margin(1e-9));
  CHECK(abs_sum(logits) == Approx(16.185380831127986).epsilon(1e-5));
}

TEST_CASE("seeded ViT: parameter names, order, initial values and output are pinned", "[model][vit][pinned]") {
  vcycle::ViTConfig cfg;
  cfg.image_size = 8; cfg.patch = 4; cfg.channels = 1; cfg.classes = 3;
  cfg.layers = 2; cfg.hidden = 16; cfg.heads = 2; cfg.head_size = 8; cfg.ffn = 32;
  torch::manual_seed(1234);
  vcycle::ViT model(cfg);
  const std::vector<std::string> pre_ln{"ln1", "attn", "ln2", "mlp"};
  CHECK(names_and_shapes(*model) == "cls_token [1, 1, 16], pos_emb [1, 5, 16], patch_emb.weight [16, 16], patch_emb.bias [16], " +
                                        block_names(0, pre_ln, 16, 16, 32) + block_names(1, pre_ln, 16, 16, 32) +
                                        "ln_f.weight [16], ln_f.bias [16], head.weight [3, 16], head.bias [3], ");
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(torch::linspace(-1, 1, 128).view({2, 1, 8, 8}));
  CHECK(weighted_sum(*model) == Approx(1356.2437690015345).epsilon(0).margin(1e-9));
  CHECK(abs_sum(logits) == Approx(0.32439580745995045).epsilon(1e-5));
}
