// BERT encoder: shapes and stable names, bidirectional attention, the loss over masked positions
// only, and that it learns.

#include <array>

#include <torch/torch.h>

#include "vcycle/models/bert/bert.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using vcycle::Bert;
using vcycle::BertConfig;
using vcycle::BertImpl;
using torch::indexing::Slice;

namespace {
BertConfig tiny_bert() {
  BertConfig cfg;
  cfg.layers = 2; cfg.hidden = 32; cfg.heads = 4; cfg.head_size = 8; cfg.ffn = 64; cfg.context = 16; cfg.vocab = 51;
  return cfg;
}
}  // namespace

TEST_CASE("BERT logits have shape (B, T, V) and parameter names are stable", "[model][bert]") {
  torch::manual_seed(0);
  Bert model(tiny_bert());
  auto idx = torch::randint(0, 51, {3, 10}, torch::kLong);
  CHECK(model->forward(idx).sizes() == torch::IntArrayRef({3, 10, 51}));
  auto params = model->named_parameters();
  CHECK(params["blocks.1.attn.qkv.weight"].sizes() == torch::IntArrayRef({96, 32}));
  CHECK(params["seg_emb.weight"].sizes() == torch::IntArrayRef({2, 32}));
  CHECK(params["mlm.dense.weight"].sizes() == torch::IntArrayRef({32, 32}));
  CHECK(params["mlm.ln.weight"].sizes() == torch::IntArrayRef({32}));
  CHECK(params["mlm.bias"].sizes() == torch::IntArrayRef({51}));
  CHECK(params.contains("emb_ln.bias"));
  CHECK_FALSE(params.contains("head.weight"));  // the decoder is the token embedding
  CHECK(model->named_buffers().size() == 0);
  // Segment ids: all zeros is the default; segment 1 changes the output.
  auto zeros = torch::zeros_like(idx), ones = torch::ones_like(idx);
  torch::NoGradGuard ng;
  CHECK(torch::equal(model->forward(idx), model->forward(idx, zeros)));
  CHECK_FALSE(torch::allclose(model->forward(idx), model->forward(idx, ones)));
}

TEST_CASE("BERT attention is bidirectional: a later token changes earlier outputs", "[model][bert]") {
  torch::manual_seed(1);
  Bert model(tiny_bert());
  auto idx = torch::randint(0, 50, {2, 12}, torch::kLong);
  auto changed = idx.clone();
  changed.index_put_({Slice(), 9}, (idx.index({Slice(), 9}) + 1) % 50);
  torch::NoGradGuard ng;
  CHECK_FALSE(torch::allclose(model->forward(idx).index({Slice(), 0}), model->forward(changed).index({Slice(), 0})));
}

TEST_CASE("BERT's loss is the cross-entropy over the masked positions only", "[model][bert][mlm]") {
  torch::manual_seed(2);
  Bert model(tiny_bert());
  auto input = torch::randint(0, 50, {3, 16}, torch::kLong);
  auto target = torch::full({3, 16}, BertImpl::kIgnoreIndex, torch::kLong);
  const std::vector<std::array<int64_t, 2>> masked = {{0, 3}, {1, 0}, {1, 15}, {2, 7}};
  for (const auto& [r, c] : masked) target.index_put_({r, c}, (r * 7 + c) % 50);
  torch::NoGradGuard ng;
  const auto logp = torch::log_softmax(model->forward(input), -1);
  double want = 0;
  for (const auto& [r, c] : masked) want -= logp.index({r, c, (r * 7 + c) % 50}).item<double>();
  want /= static_cast<double>(masked.size());
  CHECK(model->loss(input, target).item<double>() == Approx(want).epsilon(1e-5));
}

TEST_CASE("BERT learns a fixed masked batch", "[model][bert]") {
  torch::manual_seed(3);
  Bert model(tiny_bert());
  auto input = torch::randint(0, 50, {8, 16}, torch::kLong);
  auto target = torch::where(torch::rand({8, 16}) < 0.3, input, torch::full({8, 16}, BertImpl::kIgnoreIndex, torch::kLong));
  input = torch::where(target != BertImpl::kIgnoreIndex, torch::full({8, 16}, 50, torch::kLong), input);  // [MASK] = 50
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3));
  const double first = model->loss(input, target).item<double>();
  double last = first;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    auto loss = model->loss(input, target);
    loss.backward();
    opt.step();
    last = loss.item<double>();
  }
  CHECK(last < 0.5 * first);
}
