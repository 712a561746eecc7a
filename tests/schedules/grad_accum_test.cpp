// Gradient accumulation: n micro-batches of B give the same step as one batch of n·B.
#include <filesystem>

#include "test_util.h"
#include "vcycle/checkpoint.h"
#include "vcycle/config.h"
#include "vcycle/cycle.h"
#include "vcycle/model_registry.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("n accumulated micro-batches equal one n-times-larger batch, for AdamW, CAME and LAMB", "[grad_accum]") {
  test::TempDir dir("accum");
  test::prepare_fixture_corpus(dir.str("data"));
  for (const std::string opt : {"adamw", "came", "lamb"}) {
    auto run = [&](int64_t batch, int64_t accum) {
      const std::string out = dir.str(opt + "_" + std::to_string(accum));
      test::write_text(dir.str("c.yaml"),
                       "seed: 9\nthreads: 1\nmodel: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n"
                       "data: { train: " + dir.str("data/train.bin") + ", valid: " + dir.str("data/valid.bin") +
                       ", batch_size: " + std::to_string(batch) + ", grad_accum: " + std::to_string(accum) + " }\n"
                       "baseline: { steps: 3, optimizer: " + opt + ", lr: 1e-3, warmup: 1 }\n"
                       "eval: { every: 10, batches: 1 }\ntrain: { max_grad_norm: 0.5 }\noutput: " + out + "\n");
      const RunConfig cfg = load_config(dir.str("c.yaml"));
      auto adapter = make_builtin_model(cfg);
      run_cycle(cfg, *adapter, cfg.baseline_phases(), out, CycleOptions{false, "accum", true});
      return load_checkpoint(out + "/checkpoint.ckpt").tensors;
    };
    const TensorMap whole = run(8, 1);
    const TensorMap accumulated = run(2, 4);
    REQUIRE(whole.size() == accumulated.size());
    for (const auto& [name, t] : whole) {
      if (name.rfind("model/", 0) != 0) continue;
      // fp32 sums in a different order: agreement to ~1e-6 relative (of the tensor's scale) is exact
      // up to rounding, while one missing or doubled micro-batch moves parameters by ~lr = 1e-3.
      const double scale = t.abs().max().item<double>();
      const double diff = (t - accumulated.at(name)).abs().max().item<double>();
      INFO(opt << " " << name << " diff " << diff << " scale " << scale);
      CHECK(diff <= 1e-6 * std::max(1.0, scale));
    }
    // A different accumulation (fewer micro-batches) really is a different step.
    const TensorMap half = run(2, 2);
    CHECK_FALSE(torch::allclose(whole.at("model/blocks.0.mlp.fc.weight"), half.at("model/blocks.0.mlp.fc.weight"), 0, 1e-5));
  }
}
