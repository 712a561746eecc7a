// Mixed precision: the autocast guard turns matmuls bf16 on the CPU (the same code path as CUDA),
// restores the previous state, and leaves weights and gradients fp32.
#include <torch/types.h>

#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/registry.h"
#include "vcycle/core/errors.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/core/precision.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("AutocastGuard: bf16 matmuls inside, fp32 after, nothing for fp32", "[precision]") {
  const auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  {
    AutocastGuard guard(Precision::bf16, torch::Device("cpu"));
    CHECK(torch::matmul(a, b).scalar_type() == torch::kBFloat16);
    {
      AutocastGuard inner(Precision::bf16, torch::Device("cpu"));
    }
    CHECK(torch::matmul(a, b).scalar_type() == torch::kBFloat16);  // the inner guard restored "on"
  }
  CHECK(torch::matmul(a, b).scalar_type() == torch::kFloat);
  {
    AutocastGuard guard(Precision::fp32, torch::Device("cpu"));
    CHECK(torch::matmul(a, b).scalar_type() == torch::kFloat);
  }
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK_THROWS_WITH(parse_precision("fp16"), Catch::Contains("valid: fp32, bf16"));
}

TEST_CASE("a GPT under bf16 autocast: loss near fp32's, fp32 weights and gradients", "[precision]") {
  GPTConfig cfg;
  cfg.layers = 2; cfg.hidden = 32; cfg.heads = 2; cfg.head_size = 16; cfg.ffn = 64; cfg.context = 16; cfg.vocab = 64;
  torch::manual_seed(0);
  GPT model(cfg);
  const auto x = torch::randint(0, 64, {4, 16}), y = torch::randint(0, 64, {4, 16});
  const double fp32 = model->loss(x, y).item<double>();
  torch::Tensor loss;
  {
    AutocastGuard guard(Precision::bf16, torch::Device("cpu"));
    loss = model->loss(x, y);
  }
  CHECK(loss.scalar_type() == torch::kFloat);  // cross-entropy runs in fp32 under autocast
  CHECK(loss.item<double>() != fp32);          // the matmuls really ran in bf16 ...
  CHECK(std::abs(loss.item<double>() - fp32) < 2e-2 * fp32);  // ... to bf16 accuracy
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    INFO(p.key());
    CHECK(p.value().scalar_type() == torch::kFloat);
    REQUIRE(p.value().grad().defined());
    CHECK(p.value().grad().scalar_type() == torch::kFloat);
  }
}

TEST_CASE("precision: an unknown value is a config error naming the key", "[precision][config]") {
  test::TempDir dir("precision");
  test::prepare_fixture_corpus(dir.str());
  const std::string yaml = "precision: fp16\nmodel: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n"
                           "data: { train: " + dir.str("train.bin") + ", valid: " + dir.str("valid.bin") + ", batch_size: 4 }\n"
                           "baseline: { steps: 2, optimizer: adamw, lr: 1e-3 }\noutput: " + dir.str("out") + "\n";
  test::write_text(dir.str("c.yaml"), yaml);
  CHECK_THROWS_WITH(load_config(dir.str("c.yaml")), Catch::Contains("precision") && Catch::Contains("fp16"));
}
