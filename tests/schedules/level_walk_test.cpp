// Schedules beyond one V: the loader's rules for level walks (growth, repeated cycles, mixes), the
// G_stack equivalence of depth de-coalescing, and what growth and repeated cycles do to the model.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "operators/op_test_util.h"  // torch first, Catch last (see there)
#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/core/metrics.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/cycle_runner.h"
#include "vcycle/schedules/run_checkpoint.h"

using namespace vcycle;
using json = nlohmann::json;

namespace {

// A tiny GPT config with `count` levels and the phase walk `levels` (one phase per entry).
std::string walk_config(const std::string& data, const std::string& out, int count, const std::vector<int>& levels,
                        const std::string& extra_phase_keys = "") {
  std::string phases;
  for (size_t i = 0; i < levels.size(); ++i) {
    phases += "  - { level: " + std::to_string(levels[i]) + ", steps: " + std::to_string(4 + static_cast<int>(i)) +
              ", lr: 3e-3, warmup: 1" + (i + 1 == levels.size() ? extra_phase_keys : "") + " }\n";
  }
  // precision: fp32, because the runs are compared to fp32 rounding (auto is bf16 on some CPUs).
  return "name: walk\nseed: 5\nthreads: 1\nprecision: fp32\n"
         "model: { type: gpt, layers: 4, hidden: 32, heads: 4, head_size: 8, ffn: 64, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 4 }\n"
         "levels: { count: " + std::to_string(count) + ", width_factor: 2, depth_factor: 2, interpolation: { alpha: 0.5 } }\n"
         "phases:\n" + phases +
         "baseline: { steps: 10, optimizer: adamw, lr: 3e-3, warmup: 1 }\n"
         "eval: { every: 4, batches: 1 }\n"
         "train: { log_every: 2, checkpoint_every: 3 }\n"
         "output: " + out + "\n";
}

std::string load_error(const std::string& path) {
  try {
    load_config(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> transition_ops(const std::string& metrics) {
  std::vector<std::string> ops;
  for (const auto& line : read_jsonl_lines(metrics)) {
    const json row = json::parse(line);
    if (row["type"] == "transition") ops.push_back(row["op"].get<std::string>());
  }
  return ops;
}

}  // namespace

TEST_CASE("the loader accepts every walk that moves one level at a time and ends at level 1", "[walk][config]") {
  test::TempDir dir("walk_ok");
  test::prepare_fixture_corpus(dir.str());
  struct Walk {
    int count;
    std::vector<int> levels;
  };
  const std::vector<Walk> walks = {
      {2, {1, 2, 1}},        // V
      {3, {1, 2, 3, 2, 1}},  // 3-level V
      {2, {2, 1}},           // growth
      {3, {3, 2, 1}},        // 3-level growth
      {2, {1, 2, 1, 2, 1}},  // repeated cycles
      {2, {2, 1, 2, 1}},     // growth, then a V
      {3, {1, 2, 1, 2, 3, 2, 1}},
  };
  for (const auto& w : walks) {
    test::write_text(dir.str("c.yaml"), walk_config(dir.str(), dir.str("out"), w.count, w.levels));
    INFO("walk of " << w.levels.size() << " phases, count " << w.count << ": " << load_error(dir.str("c.yaml")));
    const RunConfig cfg = load_config(dir.str("c.yaml"));
    REQUIRE(cfg.phases.size() == w.levels.size());
    for (size_t i = 0; i < w.levels.size(); ++i) CHECK(cfg.phases[i].level == w.levels[i]);
  }
}

TEST_CASE("the loader rejects jumps, walks not ending at level 1 and misplaced interpolation, naming the phase", "[walk][config]") {
  test::TempDir dir("walk_bad");
  test::prepare_fixture_corpus(dir.str());
  struct Bad {
    int count;
    std::vector<int> levels;
    std::string extra, key, fragment;
  };
  const std::vector<Bad> cases = {
      {3, {1, 3, 2, 1}, "", "phases[1].level", "one level at a time, but level 3 follows level 1"},
      {2, {1, 1}, "", "phases[1].level", "one level at a time"},
      {2, {1, 2}, "", "phases[1].level", "must end at level 1"},
      {2, {2, 1, 2}, "", "phases[2].level", "must end at level 1"},
      {2, {1, 3, 1}, "", "phases[1].level", "beyond levels.count = 2"},
      {3, {1, 2, 1}, "", "phases", "no phase reaches level 3"},
      // Growth's up-step has no θ_pre: an explicit blend there is refused, alpha 1 is fine.
      {2, {2, 1}, ", interpolation: { alpha: 0.5 }", "phases[1].interpolation.alpha", "no θ_pre"},
      // Interpolation belongs to up-steps only.
      {2, {1, 2}, ", interpolation: { alpha: 0.5 }", "phases[1].interpolation", "only a phase entered by an up-step"},
      {2, {1, 2, 1}, ", interpolation: { alpha: 2 }", "phases[2].interpolation.alpha", "[0, 1]"},
  };
  for (const auto& c : cases) {
    test::write_text(dir.str("c.yaml"), walk_config(dir.str(), dir.str("out"), c.count, c.levels, c.extra));
    const std::string msg = load_error(dir.str("c.yaml"));
    INFO("expected " << c.key << " / " << c.fragment << ", got: " << msg);
    CHECK_THAT(msg, Catch::Contains(c.key + ":") && Catch::Contains(c.fragment) && Catch::Contains("c.yaml:"));
  }
  // The same growth walk with alpha 1 (or no interpolation) loads.
  test::write_text(dir.str("c.yaml"), walk_config(dir.str(), dir.str("out"), 2, {2, 1}, ", interpolation: { alpha: 1 }"));
  CHECK(load_error(dir.str("c.yaml")).empty());
}

TEST_CASE("de-coalescing a 2-block model in depth with halves pairing is G_stack: [b1, b2] -> [b1, b2, b1, b2]", "[walk][operators]") {
  torch::manual_seed(3);
  GPTConfig large = optest::small_gpt(true);
  large.layers = 4;
  const ParamMap map = gpt_param_map(large);
  CoalesceFactors f;
  f.width = 1;
  f.depth = 2;
  f.depth_pairing = Pairing::halves;
  GPTConfig small = large;
  small.layers = 2;
  const TensorMap small_tensors = optest::random_gpt_tensors(small);
  const TensorMap stacked = decoalesce(small_tensors, map, gpt_level_shape(large), f);
  REQUIRE(stacked.size() > small_tensors.size());
  int block_tensors = 0;
  for (const auto& [name, t] : stacked) {
    INFO(name);
    std::string source = name;
    for (int layer : {2, 3}) {
      const std::string prefix = "blocks." + std::to_string(layer) + ".";
      if (name.rfind(prefix, 0) == 0) source = "blocks." + std::to_string(layer - 2) + "." + name.substr(prefix.size());
    }
    if (source != name) ++block_tensors;
    REQUIRE(small_tensors.count(source) == 1);
    CHECK(torch::equal(t, small_tensors.at(source)));
  }
  CHECK(block_tensors > 0);
}

TEST_CASE("growth starts at the small level and its up-step is the de-coalesced small model, bitwise", "[walk][vcycle]") {
  test::TempDir dir("growth");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), walk_config(dir.str("data"), dir.str("out"), 2, {2, 1}));
  const RunConfig cfg = load_config(dir.str("c.yaml"));
  auto adapter = make_model(cfg);

  // The small phase alone, then the growth walk whose level-1 phase has lr 0 (every step keeps the
  // parameters bitwise): its end state is exactly what the up-step produced.
  run_cycle(cfg, *adapter, {cfg.phases[0]}, dir.str("small"), CycleOptions{false, "small", true});
  std::vector<PhaseConfig> phases = cfg.phases;
  phases[1].lr = 0;
  run_cycle(cfg, *adapter, phases, dir.str("grown"), CycleOptions{false, "grown", true});

  const TensorMap small = load_run_checkpoint(dir.str("small/checkpoint.ckpt")).model;
  const TensorMap grown = load_run_checkpoint(dir.str("grown/checkpoint.ckpt")).model;
  CoalesceFactors f;
  f.width = 2;
  f.depth = 2;
  const TensorMap expected = decoalesce(small, adapter->param_map(), adapter->top_shape(), f);
  std::string diff;
  CHECK(optest::bitwise_equal(expected, grown, &diff));
  INFO(diff);
  // The small phase ran at level 2's shape (hidden 16), from a fresh initialisation.
  CHECK(small.at("blocks.0.attn.qkv.weight").size(1) == 16);
  CHECK(transition_ops(dir.str("grown/metrics.jsonl")) == std::vector<std::string>{"decoalesce"});
}

TEST_CASE("repeated cycles blend with the most recent θ_pre, and a phase's own interpolation wins", "[walk][vcycle]") {
  test::TempDir dir("repeat");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), walk_config(dir.str("data"), dir.str("out"), 2, {2, 1, 2, 1}));
  {
    const RunConfig cfg = load_config(dir.str("c.yaml"));
    auto adapter = make_model(cfg);
    run_cycle(cfg, *adapter, cfg.phases, dir.str("mix"), CycleOptions{false, "mix", true});
    // Growth first (nothing to blend with), then a coalescing that saves θ_pre, then a blend.
    CHECK(transition_ops(dir.str("mix/metrics.jsonl")) ==
          std::vector<std::string>{"decoalesce", "coalesce", "decoalesce+interpolate"});
  }
  // alpha 0.25 for the last up-step given per phase equals it given for every up-step.
  test::write_text(dir.str("a.yaml"), walk_config(dir.str("data"), dir.str("out"), 2, {1, 2, 1}, ", interpolation: { alpha: 0.25 }"));
  const RunConfig per_phase = load_config(dir.str("a.yaml"));
  REQUIRE(per_phase.phases[2].interpolation);
  CHECK(per_phase.phases[2].interpolation->alpha == 0.25);
  test::write_text(dir.str("b.yaml"), walk_config(dir.str("data"), dir.str("out"), 2, {1, 2, 1}));
  const RunConfig global = load_config(dir.str("b.yaml"), {"levels.interpolation.alpha=0.25"});
  const RunConfig plain = load_config(dir.str("b.yaml"));
  CHECK(config_fingerprint(per_phase, per_phase.phases) != config_fingerprint(plain, plain.phases));
  auto adapter = make_model(plain);
  run_cycle(per_phase, *adapter, per_phase.phases, dir.str("a"), CycleOptions{false, "a", true});
  run_cycle(global, *adapter, global.phases, dir.str("b"), CycleOptions{false, "b", true});
  run_cycle(plain, *adapter, plain.phases, dir.str("c"), CycleOptions{false, "c", true});
  const TensorMap a = load_run_checkpoint(dir.str("a/checkpoint.ckpt")).model;
  const TensorMap b = load_run_checkpoint(dir.str("b/checkpoint.ckpt")).model;
  const TensorMap c = load_run_checkpoint(dir.str("c/checkpoint.ckpt")).model;
  CHECK(optest::bitwise_equal(a, b));
  CHECK_FALSE(optest::bitwise_equal(a, c));  // 0.5 is the global default: a different blend
}

TEST_CASE("growth and repeated cycles run data-parallel and with projected optimizer state", "[walk][dist][cli]") {
  test::TempDir dir("walk_dist");
  test::prepare_fixture_corpus(dir.str("data"));
  auto last_eval = [](const std::string& metrics) {
    json last;
    for (const auto& line : read_jsonl_lines(metrics)) {
      const json row = json::parse(line);
      if (row["type"] == "eval") last = row;
    }
    return last;
  };
  for (const auto& [name, levels] : std::vector<std::pair<std::string, std::vector<int>>>{{"growth", {2, 1}}, {"repeat", {1, 2, 1, 2, 1}}}) {
    INFO(name);
    for (const char* run : {"one", "two", "proj"}) {
      test::write_text(dir.str(name + run + ".yaml"), walk_config(dir.str("data"), dir.str(name + run), 2, levels));
    }
    const auto one = test::run_cli({"run", dir.str(name + "one.yaml"), "--quiet", "--no-baseline"});
    const auto two = test::run_cli({"run", dir.str(name + "two.yaml"), "--quiet", "--no-baseline", "--nproc", "2"});
    const auto proj = test::run_cli({"run", dir.str(name + "proj.yaml"), "--quiet", "--no-baseline", "--set", "levels.optimizer_state=project"});
    INFO(one.output << two.output << proj.output);
    REQUIRE(one.exit_code == 0);
    REQUIRE(two.exit_code == 0);
    REQUIRE(proj.exit_code == 0);
    const json a = last_eval(dir.str(name + "one/vcycle/metrics.jsonl")), b = last_eval(dir.str(name + "two/vcycle/metrics.jsonl"));
    CHECK(a["global_step"] == b["global_step"]);
    CHECK(b["val_loss"].get<double>() == Approx(a["val_loss"].get<double>()).epsilon(1e-5));
    int projected = 0;
    for (const auto& line : read_jsonl_lines(dir.str(name + "proj/vcycle/metrics.jsonl"))) {
      const json row = json::parse(line);
      if (row["type"] == "transition") projected += row["optimizer_state"] == "project";
    }
    CHECK(projected == static_cast<int>(levels.size()) - 1);
  }
}
