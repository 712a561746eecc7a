// Training through the real command line: kill it, resume it, and get exactly the uninterrupted run.

#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/metrics.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

std::string tiny_baseline_config(const std::string& data, const std::string& out) {
  return "name: tiny\nseed: 11\nthreads: 1\n"
         "model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 32 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 4 }\n"
         "eval: { every: 10, batches: 2 }\n"
         "train: { log_every: 1, checkpoint_every: 7 }\n"
         "baseline: { steps: 40, optimizer: adamw, lr: 3e-3, warmup: 5 }\n"
         "output: " + out + "\n";
}

// Metrics rows without the fields that measure time.
std::vector<nlohmann::json> timeless_rows(const std::string& path) {
  std::vector<nlohmann::json> rows;
  for (const auto& line : read_jsonl_lines(path)) {
    auto row = nlohmann::json::parse(line);
    for (const char* k : {"wall_s", "eval_wall_s", "tokens_per_s", "phase_wall", "model_flops_per_s", "mfu"}) row.erase(k);
    rows.push_back(row);
  }
  return rows;
}

TensorMap model_of(const std::string& ckpt) {
  TensorMap out;
  for (const auto& [k, v] : load_checkpoint(ckpt).tensors) {
    if (k.rfind("model/", 0) == 0) out[k] = v;
  }
  return out;
}

}  // namespace

TEST_CASE("train: SIGKILL + --resume ends with the parameters and metrics of an uninterrupted run", "[cli][resume]") {
  test::TempDir dir("resume");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("a.yaml"), tiny_baseline_config(dir.str("data"), dir.str("a")));
  test::write_text(dir.str("b.yaml"), tiny_baseline_config(dir.str("data"), dir.str("b")));

  const auto full = test::run_cli({"train", dir.str("a.yaml"), "--quiet"});
  INFO(full.output);
  REQUIRE(full.exit_code == 0);

  // Kill at several points (metrics rows written so far), resuming after each kill.
  const std::string metrics = dir.str("b/baseline/metrics.jsonl");
  int kills = 0;
  for (int rows : {3, 12, 25, 38}) {
    const auto r = test::run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"}, metrics, rows);
    INFO(r.output);
    if (r.killed) ++kills;
    else REQUIRE(r.exit_code == 0);
  }
  CHECK(kills >= 2);  // the run must actually have been interrupted
  const auto last = test::run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
  INFO(last.output);
  REQUIRE(last.exit_code == 0);

  const TensorMap a = model_of(dir.str("a/baseline/checkpoint.ckpt"));
  const TensorMap b = model_of(dir.str("b/baseline/checkpoint.ckpt"));
  REQUIRE(a.size() == b.size());
  for (const auto& [name, t] : a) {
    INFO(name);
    CHECK(torch::equal(t, b.at(name)));
  }
  CHECK(timeless_rows(dir.str("a/baseline/metrics.jsonl")) == timeless_rows(metrics));
}

TEST_CASE("train: a run directory is never overwritten without --resume, and a changed config is refused", "[cli][resume]") {
  test::TempDir dir("resume2");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("a.yaml"), tiny_baseline_config(dir.str("data"), dir.str("a")));
  REQUIRE(test::run_cli({"train", dir.str("a.yaml"), "--quiet"}).exit_code == 0);
  const auto again = test::run_cli({"train", dir.str("a.yaml"), "--quiet"});
  CHECK(again.exit_code == 2);
  CHECK_THAT(again.output, Catch::Contains("already holds a run") && Catch::Contains("--resume"));
  const auto changed = test::run_cli({"train", dir.str("a.yaml"), "--quiet", "--resume", "--set", "baseline.lr=0.01"});
  CHECK(changed.exit_code == 2);
  CHECK_THAT(changed.output, Catch::Contains("config changed"));
}

TEST_CASE("cli: bad config exits 2 naming file and key, and writes nothing", "[cli]") {
  test::TempDir dir("badcfg");
  test::prepare_fixture_corpus(dir.str("data"));
  std::string text = tiny_baseline_config(dir.str("data"), dir.str("out"));
  text.replace(text.find("steps: 40"), 9, "steps: -4");
  test::write_text(dir.str("bad.yaml"), text);
  const auto r = test::run_cli({"train", dir.str("bad.yaml")});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("bad.yaml:") && Catch::Contains("baseline.steps") && Catch::Contains("must be > 0"));
  CHECK_FALSE(std::filesystem::exists(dir.str("out")));
  const auto help = test::run_cli({"--help"});
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.output, Catch::Contains("prepare") && Catch::Contains("train") && Catch::Contains("run"));
  CHECK(test::run_cli({"frobnicate"}).exit_code == 2);
}
