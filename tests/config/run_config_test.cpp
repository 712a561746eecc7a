// Config loading: a valid config parses; each malformed one fails with a message naming the key.

#include <filesystem>

#include <torch/cuda.h>

#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/registry.h"
#include "vcycle/core/errors.h"
#include "vcycle/schedules/finetune.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

// A valid 2-level config over data files that exist in `dir`.
std::string valid_yaml(const std::string& dir) {
  return "name: t\nseed: 7\n"
         "model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n"
         "data: { train: " + dir + "/train.bin, valid: " + dir + "/valid.bin, batch_size: 4 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2, interpolation: { alpha: 0.5 } }\n"
         "phases:\n"
         "  - { level: 1, steps: 10, optimizer: adamw, lr: 1e-3, warmup: 2 }\n"
         "  - { level: 2, steps: 10, optimizer: adamw, lr: 2e-3 }\n"
         "  - { level: 1, steps: 10, optimizer: adamw, lr: 1e-3, schedule: constant }\n"
         "baseline: { steps: 20, optimizer: adamw, lr: 1e-3 }\n"
         "output: " + dir + "/out\n";
}

struct Fixture {
  test::TempDir dir{"config"};
  Fixture() { test::prepare_fixture_corpus(dir.str()); }
  std::string write(const std::string& text) {
    const std::string path = dir.str("c.yaml");
    test::write_text(path, text);
    return path;
  }
  // Loads `text` with `replace` applied (first occurrence of `from` -> `to`) and returns the error.
  std::string error_of(const std::string& from, const std::string& to) {
    std::string text = valid_yaml(dir.str());
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
    try {
      load_config(write(text));
    } catch (const ConfigError& e) {
      return e.what();
    }
    FAIL("no ConfigError for replacing '" << from << "' with '" << to << "'");
    return "";
  }
};

}  // namespace

TEST_CASE("a valid config parses with its values and defaults", "[config]") {
  Fixture f;
  const RunConfig cfg = load_config(f.write(valid_yaml(f.dir.str())));
  CHECK(cfg.name == "t");
  CHECK(cfg.seed == 7);
  CHECK(cfg.levels.count == 2);
  REQUIRE(cfg.phases.size() == 3);
  CHECK(cfg.phases[1].lr == 2e-3);
  CHECK(cfg.phases[0].warmup == 2);
  CHECK(cfg.phases[2].schedule == LrSchedule::constant);
  CHECK(cfg.phases[1].schedule == LrSchedule::cosine);
  CHECK(cfg.eval.every == 100);
  CHECK(cfg.train.on_nonfinite == OnNonfinite::stop);
  REQUIRE(cfg.baseline);
  CHECK(cfg.baseline->steps == 20);
}

TEST_CASE("overrides given with --set change nested keys and list elements", "[config]") {
  Fixture f;
  const std::string path = f.write(valid_yaml(f.dir.str()));
  const RunConfig cfg = load_config(path, {"phases[1].lr=0.005", "model.layers=4", "eval.every=7"});
  CHECK(cfg.phases[1].lr == 0.005);
  CHECK(cfg.model["layers"].as<int>() == 4);
  CHECK(cfg.eval.every == 7);
  CHECK_THROWS_WITH(load_config(path, {"phases[9].lr=1"}), Catch::Contains("phases") && Catch::Contains("[9]"));
  CHECK_THROWS_WITH(load_config(path, {"no_equals_sign"}), Catch::Contains("key=value"));
}

TEST_CASE("malformed configs name the key at fault", "[config]") {
  Fixture f;
  struct Case {
    std::string from, to, key, fragment;
  };
  const std::vector<Case> cases = {
      {"seed: 7", "seed: 7\nbogus: 1", "bogus", "unknown key"},
      {"batch_size: 4", "batch_size: 4, shuffle: yes", "data.shuffle", "unknown key"},
      {"steps: 10, optimizer: adamw, lr: 2e-3", "steps: -5, optimizer: adamw, lr: 2e-3", "phases[1].steps", "must be > 0"},
      {"lr: 2e-3", "lr: fast", "phases[1].lr", "expected a number"},
      {"lr: 2e-3", "lr: -1", "phases[1].lr", "must be > 0"},
      {"layers: 2", "layers: two", "model.layers", "expected an integer"},
      {"/train.bin", "/missing.bin", "data.train", "does not exist"},
      {"alpha: 0.5", "alpha: 1.5", "levels.interpolation.alpha", "[0, 1]"},
      {"{ level: 2, steps: 10", "{ level: 1, steps: 10", "phases[1].level", "one level at a time"},
      {"optimizer: adamw, lr: 2e-3", "optimizer: sgd, lr: 2e-3", "phases[1].optimizer", "valid: "},
      {"schedule: constant", "schedule: linear", "phases[2].schedule", "valid: constant, cosine"},
      {"type: gpt", "type: rnn", "model.type", "valid: gpt"},
      {"count: 2", "count: 0", "levels.count", "must be >= 1"},
      {"seed: 7", "seed: 7\neval: { every: 0 }", "eval.every", "must be > 0"},
      {"seed: 7", "seed: 7\ntrain: { on_nonfinite: ignore }", "train.on_nonfinite", "valid: stop, skip_step"},
      {"seed: 7", "seed: 7\nlevels2: 1", "levels2", "unknown key"},
  };
  for (const auto& c : cases) {
    const std::string msg = f.error_of(c.from, c.to);
    INFO("case '" << c.to << "' gave: " << msg);
    CHECK_THAT(msg, Catch::Contains(c.key + ":") && Catch::Contains(c.fragment) && Catch::Contains("c.yaml"));
  }
}

TEST_CASE("a bad optimizer option fails when the config loads, not when its phase starts", "[config]") {
  Fixture f;
  // No phase uses came: its options are checked all the same.
  const std::string path = f.write(valid_yaml(f.dir.str()) + "optimizers:\n  came: { betas: [0.9, 0.999, 1.5] }\n");
  for (auto load : {&load_config, &load_config_unchecked}) {
    try {
      load(path, {});
      FAIL("no ConfigError for optimizers.came.betas");
    } catch (const ConfigError& e) {
      CHECK(e.key_path == "optimizers.came.betas");
      CHECK_THAT(e.what(), Catch::Contains("c.yaml:13") && Catch::Contains("betas[2]") && Catch::Contains("[0, 1)"));
    }
  }
}

TEST_CASE("config errors carry the line number", "[config]") {
  Fixture f;
  const std::string msg = f.error_of("lr: 2e-3", "lr: fast");
  CHECK_THAT(msg, Catch::Contains("c.yaml:8"));
}

TEST_CASE("YAML syntax errors and missing files are clear", "[config]") {
  Fixture f;
  CHECK_THROWS_WITH(load_config(f.write("model: { type: gpt\n")), Catch::Contains("YAML syntax error"));
  CHECK_THROWS_WITH(load_config(f.dir.str("nope.yaml")), Catch::Contains("config file not found"));
  CHECK_THROWS_WITH(load_config(f.write("- a\n- b\n")), Catch::Contains("map at the top level"));
}

TEST_CASE("the config fingerprint changes with anything that changes results", "[config]") {
  Fixture f;
  const std::string path = f.write(valid_yaml(f.dir.str()));
  const RunConfig a = load_config(path);
  const RunConfig b = load_config(path, {"phases[1].lr=0.003"});
  const RunConfig c = load_config(path, {"threads=1", "output=elsewhere"});
  CHECK(config_fingerprint(a, a.phases) != config_fingerprint(b, b.phases));
  CHECK(config_fingerprint(a, a.baseline_phases()) == config_fingerprint(b, b.baseline_phases()));
  CHECK(config_fingerprint(a, a.phases) == config_fingerprint(c, c.phases));
}

TEST_CASE("every shipped config in configs/ loads and validates", "[config]") {
  test::TempDir dir("shipped");
  test::prepare_fixture_corpus(dir.str());
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::source_path("configs"))) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path().string());
    // Point the data at the test corpus (the real one is prepared by tools/quickstart.sh).
    std::vector<std::string> data = {"data.train=" + dir.str("train.bin"), "data.valid=" + dir.str("valid.bin")};
    const YAML::Node doc = YAML::LoadFile(entry.path().string());
    // The test corpus is byte-level; a subword config (default-bpe.yaml) reads it as bytes here.
    if (doc["data"] && doc["data"]["tokenizer"] && doc["data"]["tokenizer"].as<std::string>() == "sentencepiece") {
      data.push_back("data.tokenizer=byte");
    }
    if (doc["lora"]) {
      // A fine-tuning config (finetune.h): its base run's checkpoint exists only after training, and
      // its base config is named relative to the repository root.
      auto overrides = data;
      overrides.push_back("base.checkpoint=" + dir.str("train.bin"));
      overrides.push_back("base.config=" + test::source_path(doc["base"]["config"].as<std::string>()));
      const FinetuneConfig cfg = load_finetune_config(entry.path().string(), overrides);
      CHECK(!cfg.targets.empty());
      ++count;
      continue;
    }
    auto overrides = data;
    if (const YAML::Node doc = YAML::LoadFile(entry.path().string());
        doc["device"] && doc["device"].as<std::string>() != "cpu" && !torch::cuda::is_available()) {
      // A GPU config on a machine without CUDA is refused at load, naming the key; the rest of it
      // is checked on the CPU.
      CHECK_THROWS_WITH(load_config(entry.path().string(), overrides), Catch::Contains("device") && Catch::Contains("not available"));
      overrides.push_back("device=cpu");
      if (doc["distributed"] && doc["distributed"]["backend"]) overrides.push_back("distributed.backend=gloo");
    }
    const RunConfig cfg = load_config(entry.path().string(), overrides);
    CHECK((cfg.baseline || !cfg.phases.empty()));
    ++count;
  }
  CHECK(count >= 5);
}

TEST_CASE("the config fingerprint of a fixed config is pinned (resumes of older runs keep working)", "[config]") {
  // A checkpoint stores the fingerprint of the config that wrote it; a resume compares it with the
  // config's fingerprint now. These values were computed by the string-typed RunConfig (before its
  // enums and parsed optimizer options) and must not change when the config's representation does.
  test::TempDir dir("pinned");
  test::prepare_fixture_corpus(dir.str());
  const std::string data = "data: { train: " + dir.str("train.bin") + ", valid: " + dir.str("valid.bin") + " }\n";
  const std::string every_key =
      "name: pinned\nseed: 11\ndevice: cpu\nprecision: bf16\nthreads: 2\n"
      "model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n" + data +
      "levels: { count: 2, width_factor: 2, depth_factor: 1, pairing: { width: neighbors, depth: halves },\n"
      "          interpolation: { alpha: 0.25, mode: norm_matched }, optimizer_state: project }\n"
      "phases:\n"
      "  - { level: 1, steps: 10, optimizer: came, lr: 1e-3, warmup: 2, batch_size: 3, grad_accum: 2 }\n"
      "  - { level: 2, steps: 12, optimizer: lamb, lr: 2e-3, schedule: constant }\n"
      "  - { level: 1, steps: 8, optimizer: adafactor, lr: 1e-3, min_lr_ratio: 0.5 }\n"
      "baseline: { steps: 30, optimizer: adamw, lr: 1e-3 }\n"
      "optimizers:\n"
      "  came: { betas: [0.9, 0.999, 0.9999], eps: [1.0e-30, 1.0e-16], no_decay: [bias] }\n"
      "  adamw: { weight_decay: 0.05 }\n"
      "eval: { every: 5, batches: 3 }\n"
      "train: { max_grad_norm: 0.5, on_nonfinite: skip_step }\n";
  const std::string defaults =
      "model: { type: gpt, layers: 2, hidden: 32, heads: 2, context: 16 }\n" + data +
      "levels: { count: 2 }\n"
      "phases:\n"
      "  - { level: 1, steps: 10 }\n"
      "  - { level: 2, steps: 10 }\n"
      "  - { level: 1, steps: 10 }\n";
  auto fingerprints = [](const std::string& text) {
    RunConfig cfg = parse_config(YAML::Load(text), "pinned.yaml");
    cfg.data.train = "data/train.bin";  // the fingerprint holds the paths: make them independent of the temp dir
    cfg.data.valid = "data/valid.bin";
    std::vector<PhaseConfig> first{cfg.phases.front()};
    return std::vector<std::string>{config_fingerprint(cfg, cfg.phases), config_fingerprint(cfg, first)};
  };
  CHECK(fingerprints(every_key) == std::vector<std::string>{"2adad563-241", "6cf63bf5-190"});
  CHECK(fingerprints(defaults) == std::vector<std::string>{"8bc23952-1bb", "3232990b-10b"});
}
