// The run checkpoint's content (schedules/run_checkpoint.cpp): the keys it maps a run onto, and a
// checkpoint written by vcycle 0.1 — before that content had a file of its own — that must still be
// read field by field and resumed to the end of its run.
//
// tests/fixtures/checkpoint_0.1 holds it: config.yaml, the checkpoint `vcycle run --no-baseline`
// wrote in phase 2 (level 2, step 3: model, θ_pre(1), optimizer and RNG state) and the metrics rows
// up to it. It was made with the 0.1 program by arming VCYCLE_KILL_DURING_WRITE=6, which kills
// the run inside its 6th checkpoint write and leaves the 5th in place.

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/metrics.h"
#include "vcycle/schedules/run_checkpoint.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kFixture = "tests/fixtures/checkpoint_0.1/";

// Runs the rest of the scope in `dir`: the fixture's config names its data files relative to the
// working directory, as the data paths are part of the config fingerprint a resume checks.
class InDirectory {
 public:
  explicit InDirectory(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~InDirectory() { fs::current_path(old_); }
  InDirectory(const InDirectory&) = delete;
  InDirectory& operator=(const InDirectory&) = delete;

 private:
  fs::path old_;
};

void check_same_tensors(const TensorMap& a, const TensorMap& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, t] : a) {
    INFO(name);
    REQUIRE(b.count(name) == 1);
    CHECK(torch::equal(t, b.at(name)));
  }
}

std::vector<json> rows_of(const std::string& path) {
  std::vector<json> rows;
  for (const auto& line : read_jsonl_lines(path)) rows.push_back(json::parse(line));
  return rows;
}

}  // namespace

TEST_CASE("run checkpoint: the content round-trips through its keys", "[checkpoint]") {
  RunCheckpoint run;
  run.state.phase = 2;
  run.state.step = 7;
  run.state.model_level = 3;
  run.state.fingerprint = "abc-12";
  run.model["w"] = torch::randn({2, 3});
  run.theta_pre[1]["w"] = torch::randn({4, 6});
  run.theta_pre[2]["w"] = torch::randn({3, 4});
  run.rng = cpu_rng_state();

  const Checkpoint ckpt = to_checkpoint(run);
  std::vector<std::string> keys;
  for (const auto& [name, t] : ckpt.tensors) keys.push_back(name);
  CHECK(keys == std::vector<std::string>{"model/w", "pre1/w", "pre2/w"});
  CHECK(ckpt.blobs.size() == 1);  // no optimizer: none is written
  CHECK(ckpt.blobs.count("rng") == 1);
  CHECK(json::parse(ckpt.meta_json)["last_val_loss"].is_null());  // NaN: no evaluation yet

  const RunCheckpoint back = run_checkpoint_from(checkpoint_from_bytes(checkpoint_to_bytes(ckpt), "mem"), "mem");
  CHECK(back.state.phase == 2);
  CHECK(back.state.step == 7);
  CHECK(back.state.model_level == 3);
  CHECK(back.state.fingerprint == "abc-12");
  CHECK(std::isnan(back.state.last_val_loss));
  check_same_tensors(back.model, run.model);
  REQUIRE(back.theta_pre.size() == 2);
  check_same_tensors(back.theta_pre.at(1), run.theta_pre.at(1));
  check_same_tensors(back.theta_pre.at(2), run.theta_pre.at(2));
  CHECK_FALSE(back.optimizer.has_value());
  CHECK(back.rng == run.rng);
  CHECK(checkpoint_model_level(ckpt, "mem") == 3);

  Checkpoint bad = ckpt;
  bad.meta_json = "{\"phase\": 1}";
  CHECK_THROWS_WITH(run_checkpoint_from(bad, "x.ckpt"), Catch::Contains("x.ckpt") && Catch::Contains("malformed"));
}

TEST_CASE("run checkpoint: model-only checkpoints of the operator commands", "[checkpoint]") {
  test::TempDir dir("model_ckpt");
  TensorMap model{{"a", torch::ones({2})}, {"b", torch::zeros({1, 3})}};
  save_model_checkpoint(dir.str("m.ckpt"), model, 2);
  const Checkpoint ckpt = load_checkpoint(dir.str("m.ckpt"));
  CHECK(json::parse(ckpt.meta_json) == json{{"level", 2}});
  check_same_tensors(checkpoint_model(ckpt), model);
  CHECK(checkpoint_model_level(ckpt, "m.ckpt") == 1);  // not a run checkpoint: no model_level
  CHECK_FALSE(run_checkpoint_finished(dir.str("m.ckpt"), "any"));
  CHECK_FALSE(run_checkpoint_finished(dir.str("missing.ckpt"), "any"));
}

TEST_CASE("run checkpoint: one written by vcycle 0.1 reads field by field and re-encodes to the same content",
          "[checkpoint]") {
  const std::string path = test::source_path(kFixture + "checkpoint.ckpt");
  const Checkpoint old = load_checkpoint(path);
  const RunCheckpoint run = load_run_checkpoint(path);

  CHECK(run.state.phase == 1);
  CHECK(run.state.step == 3);
  CHECK(run.state.entered);
  CHECK(run.state.model_level == 2);
  CHECK(run.state.global_step == 9);
  CHECK(run.state.loss_count == 1);
  CHECK(run.state.last_eval_step == 0);
  CHECK(run.state.last_val_loss > 0);
  CHECK(run.state.metrics_offset == fs::file_size(test::source_path(kFixture + "metrics.jsonl")));
  CHECK_FALSE(run.state.done);
  CHECK(run.state.fingerprint == "4e9346ed-1e8");
  // Level 2 has one block of the two: fewer tensors than θ_pre(1), the level-1 model before coalescing.
  REQUIRE(run.theta_pre.size() == 1);
  REQUIRE(run.theta_pre.count(1) == 1);
  CHECK(run.model.count("blocks.0.attn.qkv.weight") == 1);
  CHECK(run.theta_pre.at(1).count("blocks.1.attn.qkv.weight") == 1);
  CHECK(run.model.size() < run.theta_pre.at(1).size());
  CHECK(run.optimizer.has_value());
  CHECK(run.rng.has_value());
  check_same_tensors(checkpoint_model(old), run.model);
  CHECK(checkpoint_model_level(old, path) == 2);

  // Written back, it is the same content (the container's own encoding is core/checkpoint.cpp's).
  const Checkpoint again = to_checkpoint(run);
  CHECK(again.meta_json == old.meta_json);
  CHECK(again.blobs == old.blobs);
  check_same_tensors(again.tensors, old.tensors);
}

TEST_CASE("run checkpoint: one written by vcycle 0.1 resumes to the end of its run", "[checkpoint][resume][cli]") {
  test::TempDir dir("ckpt01");
  test::prepare_fixture_corpus(dir.str("data"));
  fs::copy_file(test::source_path(kFixture + "config.yaml"), dir.str("config.yaml"));
  fs::create_directories(dir.str("out/vcycle"));
  fs::copy_file(test::source_path(kFixture + "checkpoint.ckpt"), dir.str("out/vcycle/checkpoint.ckpt"));
  fs::copy_file(test::source_path(kFixture + "metrics.jsonl"), dir.str("out/vcycle/metrics.jsonl"));
  const auto old_rows = read_jsonl_lines(dir.str("out/vcycle/metrics.jsonl"));

  InDirectory in(dir.path());
  // fp32, as the fixture's first steps ran (auto, the default since, is bf16 on some CPUs; the
  // fingerprint is the same either way).
  const auto resumed =
      test::run_cli({"run", "config.yaml", "--quiet", "--no-baseline", "--resume", "--set", "precision=fp32"});
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  const auto fresh = test::run_cli(
      {"run", "config.yaml", "--quiet", "--no-baseline", "--set", "output=fresh", "--set", "precision=fp32"});
  INFO(fresh.output);
  REQUIRE(fresh.exit_code == 0);

  const RunCheckpoint end = load_run_checkpoint(dir.str("out/vcycle/checkpoint.ckpt"));
  const RunCheckpoint fresh_end = load_run_checkpoint(dir.str("fresh/vcycle/checkpoint.ckpt"));
  CHECK(end.state.done);
  CHECK(end.state.phase == 3);
  CHECK(end.state.model_level == 1);
  CHECK(end.state.global_step == 20);
  CHECK(end.theta_pre.empty());
  CHECK(end.state.fingerprint == fresh_end.state.fingerprint);

  // The rows before the checkpoint are kept as they were; the run goes on as the uninterrupted one.
  // Numbers are compared with a tolerance only: the fixture's first steps ran on another machine,
  // whose vector kernels may round differently.
  const auto lines = read_jsonl_lines(dir.str("out/vcycle/metrics.jsonl"));
  REQUIRE(lines.size() > old_rows.size());
  CHECK(std::vector<std::string>(lines.begin(), lines.begin() + static_cast<long>(old_rows.size())) == old_rows);
  const auto rows = rows_of(dir.str("out/vcycle/metrics.jsonl"));
  const auto fresh_rows = rows_of(dir.str("fresh/vcycle/metrics.jsonl"));
  REQUIRE(rows.size() == fresh_rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO("row " << i << ": " << rows[i].dump() << "\nfresh: " << fresh_rows[i].dump());
    CHECK(rows[i]["type"] == fresh_rows[i]["type"]);
    CHECK(rows[i]["global_step"] == fresh_rows[i]["global_step"]);
    CHECK(rows[i]["train_flops"] == fresh_rows[i]["train_flops"]);
    if (rows[i].contains("val_loss") && rows[i].at("val_loss").is_number()) {
      CHECK(rows[i].at("val_loss").get<double>() == Approx(fresh_rows[i].at("val_loss").get<double>()).epsilon(1e-4));
    }
  }
  REQUIRE(end.model.size() == fresh_end.model.size());
  for (const auto& [name, t] : end.model) {
    INFO(name);
    CHECK(torch::allclose(t, fresh_end.model.at(name), 1e-3, 1e-5));
  }
}
