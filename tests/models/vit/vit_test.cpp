// ViT classifier: patchify order, shapes and stable names, and that it learns.

#include <torch/torch.h>

#include "vcycle/models/vit/vit.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using vcycle::ViT;
using vcycle::ViTConfig;

namespace {
ViTConfig tiny_vit() {
  ViTConfig cfg;
  cfg.image_size = 8; cfg.patch = 4; cfg.channels = 1; cfg.classes = 3;
  cfg.layers = 2; cfg.hidden = 16; cfg.heads = 2; cfg.head_size = 8; cfg.ffn = 32;
  return cfg;
}
}  // namespace

TEST_CASE("vit_patchify reads patches row-major like a stride-p convolution", "[model][vit]") {
  torch::manual_seed(0);
  auto images = torch::randn({2, 3, 8, 12});
  auto patches = vcycle::vit_patchify(images, 4);  // 2 × 3 patches of 3·4·4
  REQUIRE(patches.sizes() == torch::IntArrayRef({2, 6, 48}));
  // A stride-4 convolution with weight w computes w · patch for each patch, in the same order.
  auto w = torch::randn({5, 3, 4, 4});
  auto conv = torch::conv2d(images, w, {}, 4).flatten(2).transpose(1, 2);  // (2, 6, 5)
  CHECK(torch::allclose(torch::matmul(patches, w.reshape({5, 48}).t()), conv, 1e-5, 1e-5));
}

TEST_CASE("ViT logits have shape (B, classes) and parameter names are stable", "[model][vit]") {
  torch::manual_seed(1);
  ViT model(tiny_vit());
  CHECK(model->forward(torch::randn({4, 1, 8, 8})).sizes() == torch::IntArrayRef({4, 3}));
  auto params = model->named_parameters();
  CHECK(params["patch_emb.weight"].sizes() == torch::IntArrayRef({16, 16}));
  CHECK(params["cls_token"].sizes() == torch::IntArrayRef({1, 1, 16}));
  CHECK(params["pos_emb"].sizes() == torch::IntArrayRef({1, 5, 16}));
  CHECK(params["head.weight"].sizes() == torch::IntArrayRef({3, 16}));
  CHECK(params["blocks.1.mlp.fc.weight"].sizes() == torch::IntArrayRef({32, 16}));
  CHECK(model->named_buffers().size() == 0);
  CHECK_THROWS_WITH(model->forward(torch::randn({4, 1, 9, 9})), Catch::Contains("ViT::forward") && Catch::Contains("[4, 1, 9, 9]"));
}

TEST_CASE("ViT learns a fixed batch", "[model][vit]") {
  torch::manual_seed(2);
  ViT model(tiny_vit());
  auto x = torch::randn({16, 1, 8, 8});
  auto y = torch::randint(0, 3, {16}, torch::kLong);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3));
  const double first = model->loss(x, y).item<double>();
  double last = first;
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    auto loss = model->loss(x, y);
    loss.backward();
    opt.step();
    last = loss.item<double>();
  }
  CHECK(last < 0.3 * first);
}
