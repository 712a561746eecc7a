// The V-cycle end to end on a tiny GPT: phases in V order, level shapes, FLOPs that add up, a
// consistent report, and exact resume after SIGKILL at many points of a 3-level cycle.
#include <csignal>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/config/run_config.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/core/flops.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/report.h"
#include "vcycle/schedules/run_checkpoint.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using json = nlohmann::json;

namespace {

// A tiny GPT config with `levels` levels and the given `phases:` list (YAML lines).
std::string config_with_phases(const std::string& data, const std::string& out, int levels, const std::string& phases) {
  return "name: tiny\nseed: 5\nthreads: 1\n"
         "model: { type: gpt, layers: 4, hidden: 32, heads: 4, head_size: 8, ffn: 64, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 4 }\n"
         "levels: { count: " + std::to_string(levels) + ", width_factor: 2, depth_factor: 2, interpolation: { alpha: 0.5 } }\n"
         "phases:\n" + phases +
         "baseline: { steps: 30, optimizer: adamw, lr: 3e-3, warmup: 2 }\n"
         "eval: { every: 4, batches: 2 }\n"
         "train: { log_every: 2, checkpoint_every: 3 }\n"
         "output: " + out + "\n";
}

// The V-cycle 1 -> ... -> levels -> ... -> 1.
std::string cycle_config(const std::string& data, const std::string& out, int levels) {
  std::string phases;
  const int steps[] = {6, 8, 10};
  for (int l = 1; l <= levels; ++l) {
    phases += "  - { level: " + std::to_string(l) + ", steps: " + std::to_string(steps[l - 1]) + ", lr: 3e-3, warmup: 2 }\n";
  }
  for (int l = levels - 1; l >= 1; --l) phases += "  - { level: " + std::to_string(l) + ", steps: 9, lr: 2e-3 }\n";
  return config_with_phases(data, out, levels, phases);
}

std::vector<json> rows_of(const std::string& path) {
  std::vector<json> rows;
  for (const auto& line : read_jsonl_lines(path)) rows.push_back(json::parse(line));
  return rows;
}

// The resumed run `b` ended with the parameters (bitwise) and metrics rows (all but timings) of the
// uninterrupted run `a`.
void check_same_run(const std::string& a_dir, const std::string& b_dir) {
  const Checkpoint a = load_checkpoint(a_dir + "/checkpoint.ckpt");
  const Checkpoint b = load_checkpoint(b_dir + "/checkpoint.ckpt");
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    INFO(name);
    CHECK(torch::equal(t, b.tensors.at(name)));
  }
  auto timeless = [](std::vector<json> rows) {
    for (auto& r : rows) {
      for (const char* k : {"wall_s", "eval_wall_s", "tokens_per_s", "phase_wall", "model_flops_per_s", "mfu"}) r.erase(k);
    }
    return rows;
  };
  CHECK(timeless(rows_of(a_dir + "/metrics.jsonl")) == timeless(rows_of(b_dir + "/metrics.jsonl")));
}

}  // namespace

TEST_CASE("2- and 3-level V-cycles run end to end and write a consistent report", "[vcycle]") {
  test::TempDir dir("vcycle");
  test::prepare_fixture_corpus(dir.str("data"));
  for (int levels : {2, 3}) {
    INFO("levels " << levels);
    const std::string out = dir.str("out" + std::to_string(levels));
    test::write_text(dir.str("c.yaml"), cycle_config(dir.str("data"), out, levels));
    const RunConfig cfg = load_config(dir.str("c.yaml"));
    auto adapter = make_model(cfg);
    run_cycle(cfg, *adapter, cfg.baseline_phases(), out + "/baseline", CycleOptions{false, "baseline", true});
    run_cycle(cfg, *adapter, cfg.phases, out + "/vcycle", CycleOptions{false, "vcycle", true});
    const ReportSummary summary = write_report(out);
    const json report = json::parse(std::ifstream(out + "/report.json"));

    // Byte-level data: a loss in bits per byte is the loss in nats over ln 2, target and runs alike.
    CHECK(report["target_bits_per_byte"].get<double>() == Approx(report["target_loss"].get<double>() / std::log(2.0)));
    CHECK(report["vcycle"]["final_val_bits_per_byte"].get<double>() ==
          Approx(report["vcycle"]["final_val_loss"].get<double>() / std::log(2.0)));
    CHECK_THAT(summary.markdown, Catch::Contains("bits/byte"));

    // Phases in V order with the right shapes: width and depth halve per level.
    const json& phases = report["vcycle"]["phases"];
    REQUIRE(phases.size() == static_cast<size_t>(2 * levels - 1));
    std::vector<int> order;
    for (const auto& p : phases) order.push_back(p["level"].get<int>());
    std::vector<int> want;
    for (int l = 1; l <= levels; ++l) want.push_back(l);
    for (int l = levels - 1; l >= 1; --l) want.push_back(l);
    CHECK(order == want);
    CHECK(phases[1]["shape"] == "layers=2 ffn=32 heads=16 hidden=16");
    if (levels == 3) CHECK(phases[2]["shape"] == "layers=1 ffn=16 heads=8 hidden=8");

    // FLOPs add up: the phases' FLOPs sum to the total, and each phase's training FLOPs are
    // tokens × F_train(shape) (operators add one FLOP per element written on top).
    double sum = 0;
    for (const auto& p : phases) sum += p["flops"].get<double>();
    const double total = report["vcycle"]["total_train_flops"].get<double>();
    CHECK(sum == Approx(total).epsilon(1e-12));
    const double ops = report["vcycle"]["operator_flops"].get<double>();
    CHECK(ops > 0);
    const auto rows = rows_of(out + "/vcycle/metrics.jsonl");
    double model_flops = 0;
    for (const auto& p : phases) {
      const GPTAdapter& gpt = dynamic_cast<const GPTAdapter&>(*adapter);
      LevelShape shape = gpt.top_shape();
      for (int l = 1; l < p["level"].get<int>(); ++l) {
        shape.layers /= 2;
        for (auto& [space, size] : shape.sizes) size /= 2;
      }
      model_flops += p["tokens"].get<double>() * train_flops_per_token(gpt.flop_shape(shape));
    }
    CHECK(model_flops + ops == Approx(total).epsilon(1e-12));
    CHECK(report["baseline"]["operator_flops"].get<double>() == 0);

    // Peak optimizer state: AdamW's two fp32 moments of the full model (8 bytes a parameter), in both
    // runs: the V-cycle's largest level is the full one.
    const double full_params = phases[0]["params"].get<double>();
    CHECK(report["baseline"]["peak_optimizer_state_bytes"].get<double>() == 8 * full_params);
    CHECK(report["vcycle"]["peak_optimizer_state_bytes"].get<double>() == 8 * full_params);

    // Transitions: one coalesce per level going down, one de-coalesce going up.
    int down = 0, up = 0;
    for (const auto& r : rows) {
      if (r["type"] == "transition") (r["op"] == "coalesce" ? down : up)++;
    }
    CHECK(down == levels - 1);
    CHECK(up == levels - 1);

    // Report consistency: savings claimed exactly when the target was reached.
    CHECK(report["target_loss"].get<double>() == report["baseline"]["final_val_loss"].get<double>());
    CHECK(report["reached_target"].get<bool>() == !report["vcycle"]["flops_to_target"].is_null());
    CHECK(summary.flop_savings.has_value() == report["reached_target"].get<bool>());
    CHECK(std::filesystem::exists(out + "/report.md"));
  }
}

TEST_CASE("a report for a V-cycle that never reaches L* says so and claims no saving", "[vcycle][report]") {
  test::TempDir dir("never");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string out = dir.str("out");
  test::write_text(dir.str("c.yaml"), cycle_config(dir.str("data"), out, 2));
  // A long baseline and a V-cycle with a tiny learning rate: the V-cycle cannot get there.
  const RunConfig cfg = load_config(dir.str("c.yaml"), {"baseline.steps=80", "phases[0].lr=1e-6", "phases[1].lr=1e-6",
                                                        "phases[2].lr=1e-6"});
  auto adapter = make_model(cfg);
  run_cycle(cfg, *adapter, cfg.baseline_phases(), out + "/baseline", CycleOptions{false, "baseline", true});
  run_cycle(cfg, *adapter, cfg.phases, out + "/vcycle", CycleOptions{false, "vcycle", true});
  const ReportSummary s = write_report(out);
  CHECK_FALSE(s.flop_savings.has_value());
  CHECK_FALSE(s.wall_savings.has_value());
  CHECK_THAT(s.markdown, Catch::Contains("never reached L*") && Catch::Contains("no saving is claimed"));
  const json report = json::parse(std::ifstream(out + "/report.json"));
  CHECK(report["flop_savings"].is_null());
  CHECK(report["vcycle"]["flops_to_target"].is_null());
}

TEST_CASE("a 3-level V-cycle killed at >= 10 points and resumed equals the uninterrupted run", "[vcycle][resume]") {
  test::TempDir dir("vkill");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("a.yaml"), cycle_config(dir.str("data"), dir.str("a"), 3));
  test::write_text(dir.str("b.yaml"), cycle_config(dir.str("data"), dir.str("b"), 3));
  const auto full = test::run_cli({"run", dir.str("a.yaml"), "--quiet", "--no-baseline"});
  INFO(full.output);
  REQUIRE(full.exit_code == 0);
  const std::string metrics_a = dir.str("a/vcycle/metrics.jsonl");
  const int total_rows = test::count_lines(metrics_a);
  REQUIRE(total_rows > 30);

  // Kill at 12 points spread over all five phases (by metrics rows written), resuming each time.
  const std::string metrics_b = dir.str("b/vcycle/metrics.jsonl");
  int kills = 0;
  for (int i = 1; i <= 12; ++i) {
    const int rows = std::max(test::count_lines(metrics_b) + 1, total_rows * i / 13);
    const auto r = test::run_cli({"run", dir.str("b.yaml"), "--quiet", "--no-baseline", "--resume"}, metrics_b, rows);
    INFO(r.output);
    if (r.killed) ++kills;
    else REQUIRE(r.exit_code == 0);
  }
  CHECK(kills >= 10);
  const auto last = test::run_cli({"run", dir.str("b.yaml"), "--quiet", "--no-baseline", "--resume"});
  INFO(last.output);
  REQUIRE(last.exit_code == 0);

  check_same_run(dir.str("a/vcycle"), dir.str("b/vcycle"));
}

TEST_CASE("growth and repeated-cycle schedules killed and resumed equal the uninterrupted run", "[vcycle][resume][walk]") {
  test::TempDir dir("walkkill");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::vector<std::pair<std::string, std::vector<int>>> walks = {{"growth", {2, 1}}, {"repeated", {1, 2, 1, 2, 1}}};
  for (const auto& [name, levels] : walks) {
    INFO(name);
    std::string phases;
    for (int l : levels) phases += "  - { level: " + std::to_string(l) + ", steps: 7, lr: 3e-3, warmup: 2 }\n";
    test::write_text(dir.str(name + "a.yaml"), config_with_phases(dir.str("data"), dir.str(name + "a"), 2, phases));
    test::write_text(dir.str(name + "b.yaml"), config_with_phases(dir.str("data"), dir.str(name + "b"), 2, phases));
    const auto full = test::run_cli({"run", dir.str(name + "a.yaml"), "--quiet", "--no-baseline"});
    INFO(full.output);
    REQUIRE(full.exit_code == 0);
    const int total_rows = test::count_lines(dir.str(name + "a/vcycle/metrics.jsonl"));
    const std::string metrics_b = dir.str(name + "b/vcycle/metrics.jsonl");
    int kills = 0;
    for (int i = 1; i <= 6; ++i) {
      const int rows = std::max(test::count_lines(metrics_b) + 1, total_rows * i / 7);
      const auto r = test::run_cli({"run", dir.str(name + "b.yaml"), "--quiet", "--no-baseline", "--resume"}, metrics_b, rows);
      INFO(r.output);
      if (r.killed) ++kills;
      else REQUIRE(r.exit_code == 0);
    }
    CHECK(kills >= 4);
    const auto last = test::run_cli({"run", dir.str(name + "b.yaml"), "--quiet", "--no-baseline", "--resume"});
    INFO(last.output);
    REQUIRE(last.exit_code == 0);
    check_same_run(dir.str(name + "a/vcycle"), dir.str(name + "b/vcycle"));
  }
}

// The worst moment for a kill is half-way through writing a checkpoint. VCYCLE_KILL_DURING_WRITE=N
// makes the program SIGKILL itself inside its Nth atomic write, so every checkpoint write of the run
// (and the report's files) gets a kill that certainly lands mid-write.
TEST_CASE("a V-cycle killed inside checkpoint writes resumes to the uninterrupted result", "[vcycle][resume]") {
  test::TempDir dir("vkillwrite");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("a.yaml"), cycle_config(dir.str("data"), dir.str("a"), 2));
  test::write_text(dir.str("b.yaml"), cycle_config(dir.str("data"), dir.str("b"), 2));
  const auto full = test::run_cli({"run", dir.str("a.yaml"), "--quiet", "--no-baseline"});
  INFO(full.output);
  REQUIRE(full.exit_code == 0);

  // Each resumed process starts its write count at 1, so "kill in write 2" lands in a different
  // checkpoint every time: the runner writes one at every phase start and every 3 steps.
  const std::string ckpt = dir.str("b/vcycle/checkpoint.ckpt");
  int kills = 0;
  for (int attempt = 0; attempt < 40; ++attempt) {
    ::setenv("VCYCLE_KILL_DURING_WRITE", "2", 1);
    const auto r = test::run_cli({"run", dir.str("b.yaml"), "--quiet", "--no-baseline", "--resume"});
    ::unsetenv("VCYCLE_KILL_DURING_WRITE");
    INFO(r.output);
    if (r.exit_code == 0) break;
    REQUIRE(r.signal == SIGKILL);
    ++kills;
    // The half-written temp file is there ("<file>.tmp.<pid>" of the killed process: a checkpoint, or
    // after the last phase the run's config.resolved.yaml / run_info.json one level up), and the
    // checkpoint it was replacing is intact.
    bool temp_left = false;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir.str("b"))) {
      temp_left = temp_left || e.path().filename().string().find(".tmp.") != std::string::npos;
    }
    CHECK(temp_left);
    if (std::filesystem::exists(ckpt)) CHECK_NOTHROW(load_checkpoint(ckpt));
    if (std::filesystem::exists(ckpt) && load_run_checkpoint(ckpt).state.done) break;  // only the run-info writes are left
  }
  CHECK(kills >= 5);
  const auto last = test::run_cli({"run", dir.str("b.yaml"), "--quiet", "--no-baseline", "--resume"});
  INFO(last.output);
  REQUIRE(last.exit_code == 0);

  check_same_run(dir.str("a/vcycle"), dir.str("b/vcycle"));
}
