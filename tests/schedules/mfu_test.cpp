// MFU in a run: train rows carry model FLOP/s and, with a known peak, MFU against it; the report
// states the peak and where it came from. Without a peak (no config key, empty cache) the rows carry
// FLOP/s alone. FLOPs and losses are the same either way.

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "experiment_util.h"
#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/schedules/report.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using json = nlohmann::json;

namespace {

std::string config(const std::string& dir, const std::string& train_extra) {
  return "name: mfu\nseed: 5\nthreads: 1\n"
         "model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n"
         "data: { train: " + dir + "/data/train.bin, valid: " + dir + "/data/valid.bin, batch_size: 4 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2 }\n"
         "phases:\n"
         "  - { level: 1, steps: 2, optimizer: adamw, lr: 3e-3 }\n"
         "  - { level: 2, steps: 2, optimizer: adamw, lr: 3e-3 }\n"
         "  - { level: 1, steps: 2, optimizer: adamw, lr: 3e-3 }\n"
         "baseline: { steps: 4, optimizer: adamw, lr: 3e-3 }\n"
         "eval: { every: 2, batches: 1 }\n"
         "train: { log_every: 1" + train_extra + " }\n"
         "output: " + dir + "/out\n";
}

}  // namespace

TEST_CASE("train.peak_flops gives train rows MFU and the report its peak and source", "[mfu][report]") {
  test::TempDir dir("mfu");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), config(dir.str(), ", peak_flops: 1.0e9"));
  const json report = test::run_baseline_and_vcycle(dir.str("c.yaml"));
  for (const char* run : {"baseline", "vcycle"}) {
    INFO(run);
    const auto rows = test::metrics_rows(dir.str(std::string("out/") + run + "/metrics.jsonl"), "train");
    REQUIRE(rows.size() >= 4);
    for (const auto& r : rows) {
      CHECK(r["model_flops_per_s"].get<double>() > 0);
      CHECK(r["peak_flops"].get<double>() == 1.0e9);
      CHECK(r["peak_source"] == "config");
      CHECK(r["mfu"].get<double>() == Approx(r["model_flops_per_s"].get<double>() / 1.0e9));
    }
    const json& x = report[run];
    CHECK(x["peak_flops"].get<double>() == 1.0e9);
    CHECK(x["peak_source"] == "config");
    // The whole run's rates: its totals over its training seconds.
    const double wall = x["train_wall_s"].get<double>();
    CHECK(x["model_flops_per_s"].get<double>() == Approx(x["total_train_flops"].get<double>() / wall));
    CHECK(x["tokens_per_s"].get<double>() == Approx(x["tokens"].get<double>() / wall));
    CHECK(x["mfu"].get<double>() == Approx(x["model_flops_per_s"].get<double>() / 1.0e9));
  }
  std::ifstream md(dir.str("out/report.md"));
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  CHECK(text.find("| MFU |") != std::string::npos);
  CHECK(text.find("vcycle: MFU against a peak of 1e+09 FLOP/s (config)") != std::string::npos);
}

TEST_CASE("without a known peak the rows carry FLOP/s but no MFU, and FLOPs and losses do not change", "[mfu][report]") {
  test::TempDir dir("mfu_none");
  test::ScopedEnv env("VCYCLE_CACHE_DIR", dir.str("empty-cache"));  // nothing cached there
  test::write_text(dir.str("a.yaml"), config(dir.str() + "/a_", ""));
  // The same run with a peak, for the FLOPs and losses.
  test::write_text(dir.str("b.yaml"), config(dir.str() + "/b_", ", peak_flops: 3e10"));
  for (const char* p : {"a_", "b_"}) test::prepare_fixture_corpus(dir.str(std::string(p) + "/data"));
  const json a = test::run_baseline_and_vcycle(dir.str("a.yaml"));
  test::run_baseline_and_vcycle(dir.str("b.yaml"));
  CHECK(a["vcycle"]["mfu"].is_null());
  CHECK(a["vcycle"]["peak_source"].is_null());
  CHECK(a["vcycle"]["model_flops_per_s"].get<double>() > 0);
  const auto ra = test::metrics_rows(dir.str("a_/out/vcycle/metrics.jsonl"), "train");
  const auto rb = test::metrics_rows(dir.str("b_/out/vcycle/metrics.jsonl"), "train");
  REQUIRE(ra.size() == rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    CHECK_FALSE(ra[i].contains("mfu"));
    CHECK_FALSE(ra[i].contains("peak_flops"));
    CHECK(ra[i]["model_flops_per_s"].get<double>() > 0);
    CHECK(ra[i]["train_flops"] == rb[i]["train_flops"]);
    CHECK(ra[i]["train_loss"] == rb[i]["train_loss"]);
  }
  std::ifstream md(dir.str("a_/out/report.md"));
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  CHECK(text.find("vcycle: no MFU (no peak FLOP/s known") != std::string::npos);
}

TEST_CASE("train.peak_flops must be a number > 0, named with file and line", "[mfu][config]") {
  test::TempDir dir("mfu_cfg");
  test::prepare_fixture_corpus(dir.str("data"));
  for (const std::string bad : {"-1", "0", "fast"}) {
    INFO(bad);
    test::write_text(dir.str("c.yaml"), config(dir.str(), ", peak_flops: " + bad));
    try {
      load_config(dir.str("c.yaml"));
      FAIL("no ConfigError");
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("train.peak_flops") != std::string::npos);
      CHECK(msg.find(dir.str("c.yaml") + ":") != std::string::npos);
    }
  }
  test::write_text(dir.str("c.yaml"), config(dir.str(), ", peak_flops: 1.2e11"));
  CHECK(load_config(dir.str("c.yaml")).train.peak_flops == 1.2e11);
  // Not part of the fingerprint: a different peak does not stop a resume.
  const RunConfig with = load_config(dir.str("c.yaml"));
  test::write_text(dir.str("c.yaml"), config(dir.str(), ""));
  const RunConfig without = load_config(dir.str("c.yaml"));
  CHECK(config_fingerprint(with, with.phases) == config_fingerprint(without, without.phases));
}

TEST_CASE("progress lines show FLOP/s and with a peak MFU and without one the run says how to get it", "[mfu][cli]") {
  test::TempDir dir("mfu_cli");
  test::prepare_fixture_corpus(dir.str("data"));
  test::ScopedEnv env("VCYCLE_CACHE_DIR", dir.str("empty-cache"));  // inherited by the program
  test::write_text(dir.str("c.yaml"), config(dir.str(), ""));
  const auto with = test::run_cli({"train", dir.str("c.yaml"), "--set", "train.peak_flops=2e9", "--set", "baseline.steps=2"});
  INFO(with.output);
  REQUIRE(with.exit_code == 0);
  CHECK(std::regex_search(with.output, std::regex("tok/s +[0-9.]+[kMG]?FLOP/s MFU [0-9.]+%")));
  const auto without = test::run_cli({"train", dir.str("c.yaml"), "--restart", "--set", "baseline.steps=2"});
  INFO(without.output);
  REQUIRE(without.exit_code == 0);
  CHECK(without.output.find("no MFU: no peak FLOP/s known for 1 threads") != std::string::npos);
  CHECK(without.output.find("MFU ") == std::string::npos);
  CHECK(std::regex_search(without.output, std::regex("tok/s +[0-9.]+[kMG]?FLOP/s ETA")));
}
