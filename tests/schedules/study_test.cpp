// Budget scaling (schedules/budget.cpp) against hand-computed step counts, and `vcycle study` end to
// end on a tiny GPT: 2 budgets × 2 baseline lrs × 2 V-cycle lr trials, its study.json recomputed here
// from the sub-runs' metrics alone, a second study compared with the first as its reference, reuse of
// finished sub-runs, and bad flags.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/budget.h"
#include "vcycle/schedules/study.h"

#include <catch2/catch.hpp>

using namespace vcycle;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string tiny_config(const std::string& data, const std::string& out) {
  return "name: tiny\nseed: 7\nthreads: 1\n"
         "model: { type: gpt, layers: 2, hidden: 32, heads: 4, ffn: 64, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 4 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2 }\n"
         "phases:\n"
         "  - { level: 1, steps: 4, lr: 3e-3, warmup: 1 }\n"
         "  - { level: 2, steps: 12, lr: 6e-3, warmup: 1 }\n"
         "  - { level: 1, steps: 8, lr: 3e-3, warmup: 1 }\n"
         "baseline: { steps: 16, lr: 3e-3, warmup: 1 }\n"
         "eval: { every: 4, batches: 2 }\n"
         "train: { log_every: 100, checkpoint_every: 0 }\n"
         "output: " + out + "\n";
}

double total_flops(const RunConfig& cfg, const ModelAdapter& a, const std::vector<PhaseConfig>& phases) {
  double f = 0;
  for (const auto& p : phases) f += phase_train_flops(cfg, a, p);
  return f;
}

// FLOPs and loss at which an eval curve first reaches `target`, by linear interpolation between
// the eval rows around the crossing — written here independently of report.cpp.
std::optional<double> flops_to(const std::string& metrics, double target) {
  double prev_f = 0, prev_l = 0;
  bool first = true;
  for (const auto& line : read_jsonl_lines(metrics)) {
    const json r = json::parse(line);
    if (r["type"] != "eval") continue;
    const double f = r["train_flops"], l = r["val_loss"];
    if (l <= target) return first ? f : prev_f + (prev_l - target) / (prev_l - l) * (f - prev_f);
    prev_f = f;
    prev_l = l;
    first = false;
  }
  return std::nullopt;
}

// The largest optimizer_state_bytes of a run's train rows, and its model's parameter count (from its
// first phase_end row).
std::pair<double, double> peak_state_and_params(const std::string& metrics) {
  double peak = 0, params = 0;
  for (const auto& line : read_jsonl_lines(metrics)) {
    const json r = json::parse(line);
    if (r["type"] == "train") peak = std::max(peak, r["optimizer_state_bytes"].get<double>());
    if (r["type"] == "phase_end" && params == 0) params = r["params"];
  }
  return {peak, params};
}

double final_loss(const std::string& metrics) {
  double last = NAN;
  for (const auto& line : read_jsonl_lines(metrics)) {
    const json r = json::parse(line);
    if (r["type"] == "eval") last = r["val_loss"];
  }
  return last;
}

}  // namespace

TEST_CASE("budget: proportional scales every phase, fixed_small keeps all but the last and the FLOP ratio", "[study]") {
  test::TempDir dir("budget");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), tiny_config(dir.str("data"), dir.str("out")));
  const RunConfig cfg = load_config(dir.str("c.yaml"));
  auto adapter = make_model(cfg);

  const RunConfig p = scale_budget(cfg, *adapter, 3, BudgetRule::proportional);
  CHECK(p.baseline->steps == 48);
  CHECK(p.phases[0].steps == 12);
  CHECK(p.phases[1].steps == 36);
  CHECK(p.phases[2].steps == 24);
  CHECK(p.phases[0].warmup == 1);  // warmups stay in steps

  const RunConfig f = scale_budget(cfg, *adapter, 3, BudgetRule::fixed_small);
  CHECK(f.baseline->steps == 48);
  CHECK(f.phases[0].steps == 4);
  CHECK(f.phases[1].steps == 12);
  // The last phase absorbs 3× the 1× V-cycle's FLOPs less the fixed phases'. With F1, F2 the FLOPs per
  // step at levels 1 and 2: 3·(4·F1 + 12·F2 + 8·F1) − 4·F1 − 12·F2 = 32·F1 + 24·F2 → 32 + 24·F2/F1 steps.
  PhaseConfig one = cfg.phases[0], two = cfg.phases[1];
  one.steps = two.steps = 1;
  const double f1 = phase_train_flops(cfg, *adapter, one), f2 = phase_train_flops(cfg, *adapter, two);
  CHECK(f2 <= f1 / 4);  // half width, half depth
  CHECK(f.phases[2].steps == std::llround(32 + 24 * f2 / f1));
  const double ratio1 = total_flops(cfg, *adapter, cfg.phases) / total_flops(cfg, *adapter, cfg.baseline_phases());
  const double ratio3 = total_flops(f, *adapter, f.phases) / total_flops(f, *adapter, f.baseline_phases());
  CHECK(ratio3 == Approx(ratio1).epsilon(0.02));  // up to rounding the last phase to whole steps

  CHECK_THROWS_WITH(scale_budget(cfg, *adapter, 0, BudgetRule::proportional), Catch::Contains("--budget"));
  CHECK_THROWS_WITH(scale_budget(cfg, *adapter, NAN, BudgetRule::fixed_small), Catch::Contains("--budget"));
  // At 0.25× the fixed phases alone cost more than the whole V-cycle may.
  CHECK_THROWS_WITH(scale_budget(cfg, *adapter, 0.25, BudgetRule::fixed_small), Catch::Contains("fixed_small"));
  CHECK_THROWS_WITH(budget_rule_from_name("linear", "--rule"), Catch::Contains("valid: fixed_small, proportional"));
}

TEST_CASE("study: 2 budgets × 2 baseline lrs, and study.json matches the sub-runs' metrics", "[study]") {
  test::TempDir dir("study");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string out = dir.str("out");
  test::write_text(dir.str("c.yaml"), tiny_config(dir.str("data"), out));
  const auto r = test::run_cli(
      {"study", dir.str("c.yaml"), "--budgets", "1,2", "--baseline-lrs", "1e-3,3e-3", "--vcycle-lr-scales", "0.5,1", "--quiet"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("vcycle study") != std::string::npos);

  const fs::path study = fs::path(out) / "study";
  std::ifstream in(study / "study.json");
  const json s = json::parse(in);
  REQUIRE(s["cells"].size() == 2);
  CHECK(s["rule"] == "proportional");  // the default rule
  CHECK(s["vcycle_lr_scales"] == json::array({0.5, 1.0}));
  CHECK(s["baseline_optimizer"] == "adamw");
  for (const auto& c : s["cells"]) {
    const double m = c["budget"];
    INFO("budget " << m);
    const std::string cell = (study / ("b" + std::string(m == 1 ? "1" : "2")) / "s7").string();
    // The target is the better of the two baselines' final losses.
    const double l_lo = final_loss(cell + "/baseline-lr0.001/metrics.jsonl");
    const double l_hi = final_loss(cell + "/baseline-lr0.003/metrics.jsonl");
    const double target = std::min(l_lo, l_hi);
    CHECK(c["target_loss"].get<double>() == target);
    CHECK(c["best_lr"].get<double>() == (l_lo <= l_hi ? 1e-3 : 3e-3));
    const std::string best = cell + (l_lo <= l_hi ? "/baseline-lr0.001" : "/baseline-lr0.003") + "/metrics.jsonl";
    const double base_flops = *flops_to(best, target);
    CHECK(c["baseline_flops_to_target"].get<double>() == Approx(base_flops).epsilon(1e-12));
    // The V-cycle kept is the trial (lr × 0.5 or × 1) with the lower final loss.
    const double v_half = final_loss(cell + "/vcycle-proportional-lrx0.5/metrics.jsonl");
    const double v_one = final_loss(cell + "/vcycle-proportional/metrics.jsonl");
    CHECK(c["vcycle_lr_scale"].get<double>() == (v_half < v_one ? 0.5 : 1.0));
    const std::string vc = cell + (v_half < v_one ? "/vcycle-proportional-lrx0.5" : "/vcycle-proportional") + "/metrics.jsonl";
    const auto vc_flops = flops_to(vc, target);
    CHECK(c["vcycle_final_val_loss"].get<double>() == std::min(v_half, v_one));
    // AdamW keeps two fp32 moments per parameter: 8 bytes each, at the full size in both runs.
    const auto [base_peak, base_params] = peak_state_and_params(best);
    CHECK(base_peak == 8 * base_params);
    CHECK(c["baseline_peak_optimizer_state_bytes"].get<double>() == base_peak);
    CHECK(c["vcycle_peak_optimizer_state_bytes"].get<double>() == peak_state_and_params(vc).first);
    CHECK(c["vcycle_peak_optimizer_state_bytes"].get<double>() == 8 * base_params);
    if (vc_flops) {
      CHECK(c["vcycle_flops_to_target"].get<double>() == Approx(*vc_flops).epsilon(1e-12));
      CHECK(c["flop_savings"].get<double>() == Approx(1 - *vc_flops / base_flops).epsilon(1e-12));
    } else {
      CHECK(c["vcycle_flops_to_target"].is_null());
      CHECK(c["flop_savings"].is_null());
    }
  }
  CHECK(fs::exists(study / "study.md"));
  // The 2× baseline ran twice the steps of the 1× one.
  CHECK(s["cells"][1]["baseline_train_flops"].get<double>() == Approx(2 * s["cells"][0]["baseline_train_flops"].get<double>()));

  // Run again: every sub-run is finished with the same config, so nothing trains and study.json is the same.
  const auto metrics_time = fs::last_write_time(study / "b2/s7/vcycle-proportional/metrics.jsonl");
  const auto again = test::run_cli(
      {"study", dir.str("c.yaml"), "--budgets", "1,2", "--baseline-lrs", "1e-3,3e-3", "--vcycle-lr-scales", "0.5,1"});
  REQUIRE(again.exit_code == 0);
  CHECK(again.output.find("reusing it") != std::string::npos);
  CHECK(fs::last_write_time(study / "b2/s7/vcycle-proportional/metrics.jsonl") == metrics_time);
  std::ifstream in2(study / "study.json");
  json s2 = json::parse(in2);
  CHECK(s2["cells"] == s["cells"]);

  // A CAME study of the same model at 1×, compared with the AdamW study above as its reference.
  const std::string came_out = dir.str("came");
  std::string came_cfg = tiny_config(dir.str("data"), came_out);
  for (size_t at = 0; (at = came_cfg.find("lr: ", at)) != std::string::npos; at += 20) came_cfg.insert(at, "optimizer: came, ");
  test::write_text(dir.str("came.yaml"), came_cfg);
  const auto rc = test::run_cli({"study", dir.str("came.yaml"), "--budgets", "1", "--baseline-lrs", "1e-3,3e-3", "--reference",
                                 study.string(), "--quiet"});
  INFO(rc.output);
  REQUIRE(rc.exit_code == 0);
  std::ifstream in3(fs::path(came_out) / "study" / "study.json");
  const json sc = json::parse(in3);
  REQUIRE(sc["cells"].size() == 1);
  const json& v = sc["cells"][0]["vs_reference"];
  const json& adamw_cell = s["cells"][0];
  CHECK(v["optimizer"] == "adamw");
  CHECK(v["target_loss"] == adamw_cell["target_loss"]);
  const std::string came_vc = came_out + "/study/b1/s7/vcycle-proportional/metrics.jsonl";
  const auto came_flops = flops_to(came_vc, adamw_cell["target_loss"].get<double>());
  if (came_flops) {
    CHECK(v["flop_savings"].get<double>() ==
          Approx(1 - *came_flops / adamw_cell["baseline_flops_to_target"].get<double>()).epsilon(1e-12));
  } else {
    CHECK(v["flop_savings"].is_null());
  }
  const double came_peak = peak_state_and_params(came_vc).first;
  CHECK(came_peak < adamw_cell["baseline_peak_optimizer_state_bytes"].get<double>() * 0.75);  // factored second moments
  CHECK(v["memory_savings"].get<double>() ==
        Approx(1 - came_peak / adamw_cell["baseline_peak_optimizer_state_bytes"].get<double>()).epsilon(1e-12));
  std::ifstream md(fs::path(came_out) / "study" / "study.md");
  const std::string md_text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  CHECK(md_text.find("the adamw baseline's loss") != std::string::npos);
}

TEST_CASE("study: bad flags exit 2 naming the flag, before anything is written", "[study]") {
  test::TempDir dir("study-bad");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), tiny_config(dir.str("data"), dir.str("out")));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--budgets", "0,1"}, "--budgets"},
      {{"--budgets", "1,inf"}, "--budgets"},
      {{"--baseline-lrs", "-1e-3"}, "--baseline-lrs"},
      {{"--seeds", "0"}, "--seeds"},
      {{"--vcycle-lr-scales", "0"}, "--vcycle-lr-scales"},
      {{"--baseline-lrs", "1e-3,2e-3", "--vcycle-lr-scales", "0.5,1,2"}, "--vcycle-lr-scales"},
      {{"--reference", "/nonexistent/study"}, "--reference"},
      {{"--rule", "linear"}, "--rule"},
  };
  for (const auto& [flags, name] : cases) {
    std::vector<std::string> args{"study", dir.str("c.yaml")};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto r = test::run_cli(args);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(name) != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir.str("out")));
}

TEST_CASE("run --budget 2 trains the scaled config into <output>-x2", "[study]") {
  test::TempDir dir("run-budget");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string out = dir.str("out");
  test::write_text(dir.str("c.yaml"), tiny_config(dir.str("data"), out));
  const auto r = test::run_cli({"run", dir.str("c.yaml"), "--budget", "2", "--rule", "proportional", "--quiet"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_FALSE(fs::exists(out));
  // The steps each run took, from its phase_end rows: the baseline 2 × 16, the phases 2 × (4, 12, 8).
  auto steps = [](const std::string& metrics) {
    std::vector<int64_t> s;
    for (const auto& line : read_jsonl_lines(metrics)) {
      const json row = json::parse(line);
      if (row["type"] == "phase_end") s.push_back(row["steps"]);
    }
    return s;
  };
  CHECK(steps(out + "-x2/baseline/metrics.jsonl") == std::vector<int64_t>{32});
  CHECK(steps(out + "-x2/vcycle/metrics.jsonl") == std::vector<int64_t>{8, 24, 16});
}
