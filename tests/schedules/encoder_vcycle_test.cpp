// 2-level V-cycles of the encoder families end to end at tiny size: BERT (MLM on the byte corpus)
// and ViT (on a tiny synthetic IDX image set), with the baseline and the report; ViT's eval rows and
// report carry validation accuracy.
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "experiment_util.h"
#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/core/flops.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/report.h"
#include "vcycle/core/file_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using json = nlohmann::json;

namespace {

std::string cycle_sections(const std::string& out) {
  return "levels: { count: 2, width_factor: 2, depth_factor: 2, interpolation: { alpha: 0.5 } }\n"
         "phases:\n"
         "  - { level: 1, steps: 4, optimizer: adamw, lr: 3e-3, warmup: 2 }\n"
         "  - { level: 2, steps: 6, optimizer: adamw, lr: 3e-3 }\n"
         "  - { level: 1, steps: 6, optimizer: adamw, lr: 2e-3 }\n"
         "baseline: { steps: 12, optimizer: adamw, lr: 3e-3, warmup: 2 }\n"
         "eval: { every: 3, batches: 2 }\n"
         "train: { log_every: 2, checkpoint_every: 5 }\n"
         "output: " + out + "\n";
}

void check_v_order(const json& report, const std::string& small_shape) {
  const json& phases = report["vcycle"]["phases"];
  REQUIRE(phases.size() == 3);
  CHECK(phases[0]["level"] == 1);
  CHECK(phases[1]["level"] == 2);
  CHECK(phases[2]["level"] == 1);
  CHECK(phases[1]["shape"] == small_shape);
  CHECK(std::isfinite(report["vcycle"]["final_val_loss"].get<double>()));
  CHECK(std::isfinite(report["baseline"]["final_val_loss"].get<double>()));
}

}  // namespace

TEST_CASE("a 2-level BERT V-cycle runs end to end", "[vcycle][bert]") {
  test::TempDir dir("bert_cycle");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"),
                   "name: bert-tiny\nseed: 3\nthreads: 1\n"
                   "model: { type: bert, layers: 2, hidden: 32, heads: 4, head_size: 8, ffn: 64, context: 16 }\n"
                   "data: { train: " + dir.str("data/train.bin") + ", valid: " + dir.str("data/valid.bin") + ", batch_size: 4 }\n" +
                       cycle_sections(dir.str("out")));
  const json report = test::run_baseline_and_vcycle(dir.str("c.yaml"));
  check_v_order(report, "layers=1 ffn=32 heads=16 hidden=16");
  const auto rows = test::metrics_rows(dir.str("out/vcycle/metrics.jsonl"), "eval");
  REQUIRE(!rows.empty());
  for (const auto& r : rows) CHECK_FALSE(r.contains("val_accuracy"));  // no extra metric for BERT
  CHECK_FALSE(report["vcycle"].contains("final_val_accuracy"));
  // An MLM loss starts near ln(257) ≈ 5.5 and must have moved below it.
  CHECK(report["vcycle"]["final_val_loss"].get<double>() < 5.5);
}

TEST_CASE("a 2-level ViT V-cycle runs end to end and reports accuracy", "[vcycle][vit]") {
  test::TempDir dir("vit_cycle");
  const std::string train = test::write_tiny_image_set(dir.str("images"), 64, 16, 8, 4);
  test::write_text(dir.str("c.yaml"),
                   "name: vit-tiny\nseed: 3\nthreads: 1\n"
                   "model: { type: vit, image_size: 8, patch: 4, channels: 1, classes: 4, layers: 2, hidden: 16, heads: 2, ffn: 32 }\n"
                   "data: { train: " + train + ", valid: " + dir.str("images/t10k-images-idx3-ubyte") + ", batch_size: 8 }\n" +
                       cycle_sections(dir.str("out")));
  const json report = test::run_baseline_and_vcycle(dir.str("c.yaml"));
  check_v_order(report, "layers=1 ffn=16 heads=8 hidden=8");
  for (const char* run : {"baseline", "vcycle"}) {
    INFO(run);
    const auto rows = test::metrics_rows(dir.str(std::string("out/") + run + "/metrics.jsonl"), "eval");
    REQUIRE(!rows.empty());
    for (const auto& r : rows) {
      REQUIRE(r.contains("val_accuracy"));
      const double acc = r["val_accuracy"].get<double>();
      CHECK(acc >= 0.0);
      CHECK(acc <= 1.0);
      CHECK(std::abs(acc * 16 - std::round(acc * 16)) < 1e-9);  // a share of the 16 validation images
    }
    CHECK(report[run]["final_val_accuracy"].get<double>() == rows.back()["val_accuracy"].get<double>());
  }
  // Tokens are images × (patches + class token): 4 + 1 = 5 per image, 8 images per step.
  CHECK(report["vcycle"]["phases"][1]["tokens"].get<double>() == 6 * 8 * 5);
  CHECK_THAT(read_file(dir.str("out/report.md")), Catch::Contains("Final validation accuracy"));
}
