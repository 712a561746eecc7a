// GPT decoder: shapes, causality, gradients, and that it learns a fixed batch.

#include <torch/torch.h>

#include "vcycle/models/gpt/gpt.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using vcycle::GPT;
using vcycle::GPTConfig;

namespace {
GPTConfig tiny_config(bool tied = true) {
  GPTConfig cfg;
  cfg.layers = 2; cfg.hidden = 32; cfg.heads = 4; cfg.head_size = 8; cfg.ffn = 64; cfg.context = 16; cfg.vocab = 50;
  cfg.tied_embeddings = tied;
  return cfg;
}
}  // namespace

TEST_CASE("GPT logits have shape (B, T, V) and parameter names are stable", "[model][gpt]") {
  torch::manual_seed(0);
  for (bool tied : {true, false}) {
    GPT model(tiny_config(tied));
    auto idx = torch::randint(0, 50, {3, 10}, torch::kLong);
    auto logits = model->forward(idx);
    CHECK(logits.sizes() == torch::IntArrayRef({3, 10, 50}));
    auto params = model->named_parameters();
    CHECK(params.contains("blocks.1.attn.qkv.weight"));
    CHECK(params["blocks.1.attn.qkv.weight"].sizes() == torch::IntArrayRef({96, 32}));
    CHECK(params["blocks.0.attn.proj.weight"].sizes() == torch::IntArrayRef({32, 32}));
    CHECK(params["blocks.0.mlp.fc.weight"].sizes() == torch::IntArrayRef({64, 32}));
    CHECK(params.contains("head.weight") == !tied);
    CHECK(model->named_buffers().size() == 0);
  }
}

TEST_CASE("GPT is causal: a future token does not change earlier logits", "[model][gpt]") {
  torch::manual_seed(1);
  GPT model(tiny_config());
  auto idx = torch::randint(0, 50, {2, 12}, torch::kLong);
  auto changed = idx.clone();
  changed.index_put_({torch::indexing::Slice(), 7}, (idx.index({torch::indexing::Slice(), 7}) + 1) % 50);
  torch::NoGradGuard ng;
  auto a = model->forward(idx), b = model->forward(changed);
  using torch::indexing::Slice;
  CHECK(torch::equal(a.index({Slice(), Slice(0, 7)}), b.index({Slice(), Slice(0, 7)})));
  CHECK_FALSE(torch::allclose(a.index({Slice(), 7}), b.index({Slice(), 7})));
}

TEST_CASE("GPT gradients match finite differences (float64)", "[model][gpt]") {
  torch::manual_seed(2);
  auto cfg = tiny_config(false);
  cfg.layers = 1; cfg.hidden = 8; cfg.heads = 2; cfg.head_size = 4; cfg.ffn = 16; cfg.vocab = 11; cfg.context = 6;
  GPT model(cfg);
  model->to(torch::kDouble);
  auto x = torch::randint(0, 11, {2, 6}, torch::kLong), y = torch::randint(0, 11, {2, 6}, torch::kLong);
  auto loss = model->loss(x, y);
  loss.backward();
  // Central differences on a few entries of every parameter; float64 makes 1e-6 agreement meaningful.
  torch::NoGradGuard ng;
  const double h = 1e-6;
  for (auto& item : model->named_parameters()) {
    auto p = item.value();
    auto flat = p.view({-1});
    auto grad = p.grad().view({-1});
    for (int64_t i = 0; i < std::min<int64_t>(3, flat.numel()); ++i) {
      const double old = flat[i].item<double>();
      flat[i] = old + h;
      const double up = model->loss(x, y).item<double>();
      flat[i] = old - h;
      const double down = model->loss(x, y).item<double>();
      flat[i] = old;
      const double numeric = (up - down) / (2 * h);
      INFO(item.key() << "[" << i << "]");
      CHECK(grad[i].item<double>() == Approx(numeric).margin(1e-7).epsilon(1e-4));
    }
  }
}

TEST_CASE("GPT learns a fixed batch", "[model][gpt]") {
  torch::manual_seed(3);
  GPT model(tiny_config());
  auto x = torch::randint(0, 50, {4, 16}, torch::kLong), y = torch::randint(0, 50, {4, 16}, torch::kLong);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3));
  const double first = model->loss(x, y).item<double>();
  double last = first;
  for (int i = 0; i < 60; ++i) {
    opt.zero_grad();
    auto loss = model->loss(x, y);
    loss.backward();
    opt.step();
    last = loss.item<double>();
  }
  CHECK(first == Approx(std::log(50.0)).epsilon(0.05));  // ~uniform at init
  CHECK(last < 0.5 * first);
}
