// Mixed precision: the autocast guard turns matmuls bf16 on the CPU (the same code path as CUDA),
// restores the previous state, and leaves weights and gradients fp32.
#include <cmath>

#include <torch/types.h>

#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/registry.h"
#include "vcycle/core/errors.h"
#include "vcycle/models/bert/bert.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/vit/vit.h"
#include "vcycle/core/peak_flops.h"
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

namespace {

// One loss under bf16 autocast against the same loss in fp32: near it (bf16 accuracy) but not equal
// (the matmuls really ran in bf16), a fp32 scalar, and fp32 weights and gradients after backward.
template <class Model>
void check_bf16_loss(Model& model, const torch::Tensor& x, const torch::Tensor& y) {
  const double fp32 = model->loss(x, y).template item<double>();
  torch::Tensor loss;
  {
    AutocastGuard guard(Precision::bf16, torch::Device("cpu"));
    loss = model->loss(x, y);
  }
  CHECK(loss.scalar_type() == torch::kFloat);  // cross-entropy runs in fp32 under autocast
  CHECK(loss.item<double>() != fp32);
  CHECK(std::abs(loss.item<double>() - fp32) < 2e-2 * fp32);
  loss.backward();
  for (const auto& p : model->named_parameters()) {
    INFO(p.key());
    CHECK(p.value().scalar_type() == torch::kFloat);
    REQUIRE(p.value().grad().defined());
    CHECK(p.value().grad().scalar_type() == torch::kFloat);
  }
}

}  // namespace

TEST_CASE("every built-in family under bf16 autocast: loss near fp32's, fp32 weights and gradients", "[precision]") {
  torch::manual_seed(0);
  SECTION("GPT") {
    GPTConfig cfg;
    cfg.layers = 2; cfg.hidden = 32; cfg.heads = 2; cfg.head_size = 16; cfg.ffn = 64; cfg.context = 16; cfg.vocab = 64;
    GPT model(cfg);
    check_bf16_loss(model, torch::randint(0, 64, {4, 16}), torch::randint(0, 64, {4, 16}));
  }
  SECTION("BERT (post-LN blocks, an MLM head whose LayerNorm follows a GELU)") {
    BertConfig cfg;
    cfg.layers = 2; cfg.hidden = 32; cfg.heads = 2; cfg.head_size = 16; cfg.ffn = 64; cfg.context = 16; cfg.vocab = 64;
    Bert model(cfg);
    check_bf16_loss(model, torch::randint(0, 64, {4, 16}), torch::randint(0, 64, {4, 16}));
  }
  SECTION("ViT") {
    ViTConfig cfg;
    cfg.image_size = 8; cfg.patch = 4; cfg.layers = 2; cfg.hidden = 32; cfg.heads = 2; cfg.head_size = 16; cfg.ffn = 64;
    ViT model(cfg);
    check_bf16_loss(model, torch::rand({4, 1, 8, 8}), torch::randint(0, 10, {4}));
  }
}

TEST_CASE("precision auto: bf16 exactly on a CPU with native bf16, fp32 on GPUs, the config default, and bad values", "[precision][config]") {
  const Precision cpu = cpu_has_bf16() ? Precision::bf16 : Precision::fp32;
  CHECK(auto_precision(true) == cpu);
  CHECK(auto_precision(false) == Precision::fp32);
  CHECK(resolve_precision("auto", true) == cpu);
  CHECK(resolve_precision("fp32", true) == Precision::fp32);
  CHECK(resolve_precision("bf16", false) == Precision::bf16);
  CHECK_THROWS_WITH(resolve_precision("fp16", true), Catch::Contains("valid: auto, fp32, bf16"));

  test::TempDir dir("precision_auto");
  test::prepare_fixture_corpus(dir.str());
  const std::string rest = "model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n"
                           "data: { train: " + dir.str("train.bin") + ", valid: " + dir.str("valid.bin") + ", batch_size: 4 }\n"
                           "baseline: { steps: 2, optimizer: adamw, lr: 1e-3 }\noutput: " + dir.str("out") + "\n";
  test::write_text(dir.str("default.yaml"), rest);
  const RunConfig by_default = load_config(dir.str("default.yaml"));
  CHECK(by_default.precision == cpu);
  CHECK(by_default.precision_auto);
  // The run says what auto picked (a resume on another machine may pick otherwise).
  const auto run = test::run_cli({"train", dir.str("default.yaml")});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.output.find("precision " + to_string(cpu) + " (auto") != std::string::npos);
  test::write_text(dir.str("fp32.yaml"), "precision: fp32\n" + rest);
  const RunConfig pinned = load_config(dir.str("fp32.yaml"));
  CHECK(pinned.precision == Precision::fp32);
  CHECK_FALSE(pinned.precision_auto);
  // An unknown value is a config error naming the key and the value.
  test::write_text(dir.str("fp16.yaml"), "precision: fp16\n" + rest);
  CHECK_THROWS_WITH(load_config(dir.str("fp16.yaml")), Catch::Contains("precision") && Catch::Contains("fp16"));
}
