// vcycle::cli_main (vcycle/cli.h) for a model the program registers itself (models/registry.h): the
// example's LLaMA, registered under a name of the test's, goes through `run`, `train` and `coalesce`
// in this process, argv as a user's main would pass it. The registry's own rules come first.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "llama_adapter.h"
#include "test_util.h"
#include "vcycle/cli.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/run_checkpoint.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kType = "cli_test_llama";

void register_once() {
  static const bool done = [] {
    vcycle::register_model(kType, llama::LlamaAdapter::from_yaml);
    return true;
  }();
  (void)done;
}

struct Result {
  int code;
  std::string err;  // what cli_main wrote to stderr
};

// cli_main over `args` (argv[0] added), its stderr captured.
Result cli(std::vector<std::string> args) {
  args.insert(args.begin(), "llama_vcycle");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // cli_main re-executes /proc/self/exe when OMP_WAIT_POLICY is unset; here that is the test binary.
  vcycle::test::ScopedEnv wait_policy("OMP_WAIT_POLICY", "PASSIVE");
  std::ostringstream err;
  auto* old = std::cerr.rdbuf(err.rdbuf());
  const int code = vcycle::cli_main(static_cast<int>(args.size()), argv.data());
  std::cerr.rdbuf(old);
  return {code, err.str()};
}

std::string config(const std::string& type, const std::string& data, const std::string& out) {
  return "name: cli-main-test\nseed: 5\nthreads: 1\n"
         "model: { type: " + type + ", layers: 2, hidden: 16, heads: 2, head_size: 8, ffn: 24, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, tokenizer: byte, batch_size: 4 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2 }\n"
         "phases:\n"
         "  - { level: 1, steps: 3, lr: 3e-3, warmup: 1 }\n"
         "  - { level: 2, steps: 4, lr: 3e-3, warmup: 1 }\n"
         "  - { level: 1, steps: 3, lr: 2e-3 }\n"
         "baseline: { steps: 6, lr: 3e-3, warmup: 1 }\n"
         "eval: { every: 3, batches: 1 }\n"
         "train: { log_every: 3, checkpoint_every: 5 }\n"
         "output: " + out + "\n";
}

}  // namespace

TEST_CASE("registry: built-ins are registered on first use, and model names are unique", "[registry]") {
  register_once();
  const auto names = vcycle::registered_models();
  REQUIRE(names.size() >= 4);
  CHECK(names[0] == "gpt");
  CHECK(names[1] == "bert");
  CHECK(names[2] == "vit");
  CHECK(std::find(names.begin(), names.end(), kType) != names.end());
  CHECK_THROWS_AS(vcycle::register_model("gpt", llama::LlamaAdapter::from_yaml), std::invalid_argument);
  CHECK_THROWS_AS(vcycle::register_model(kType, llama::LlamaAdapter::from_yaml), std::invalid_argument);
  CHECK_THROWS_AS(vcycle::register_model("", llama::LlamaAdapter::from_yaml), std::invalid_argument);
  CHECK_THROWS_AS(vcycle::register_model("empty_factory", vcycle::ModelFactory()), std::invalid_argument);
}

TEST_CASE("cli_main: a registered model runs `run`, `train` and `coalesce` through argv", "[cli][registry]") {
  register_once();
  vcycle::test::TempDir dir("cli_main");
  const std::string data = dir.str("data"), out = dir.str("out");
  vcycle::test::prepare_fixture_corpus(data);
  const std::string cfg = dir.str("run.yaml");
  vcycle::test::write_text(cfg, config(kType, data, out));

  // run: baseline + V-cycle + report, the registered model's parameter map driving the levels.
  const Result run = cli({"run", cfg, "--quiet"});
  INFO(run.err);
  REQUIRE(run.code == 0);
  const json report = json::parse(std::ifstream(out + "/report.json"));
  REQUIRE(report["vcycle"]["phases"].size() == 3);
  CHECK(report["vcycle"]["phases"][1]["shape"] == "layers=1 ffn=12 heads=8 hidden=8");
  CHECK(report["baseline"]["phases"].size() == 1);

  // train: the baseline alone, with --set reaching the registered model's config too.
  const Result train = cli({"train", cfg, "--quiet", "--set", "output=" + dir.str("train_out"), "--set", "baseline.steps=4"});
  INFO(train.err);
  REQUIRE(train.code == 0);
  const auto trained = vcycle::checkpoint_model(vcycle::load_checkpoint(dir.str("train_out/baseline/checkpoint.ckpt")));
  CHECK(trained.at("layers.1.mlp.down_proj.weight").sizes() == torch::IntArrayRef({16, 24}));

  // coalesce: the V-cycle's final (level-1) model down to level 2, through the model's map.
  const Result down = cli({"coalesce", out + "/vcycle/checkpoint.ckpt", "--config", cfg, "--out", dir.str("l2.ckpt")});
  INFO(down.err);
  REQUIRE(down.code == 0);
  const auto l2 = vcycle::checkpoint_model(vcycle::load_checkpoint(dir.str("l2.ckpt")));
  CHECK(l2.at("layers.0.self_attn.q_proj.weight").sizes() == torch::IntArrayRef({8, 8}));
  CHECK(l2.at("layers.0.mlp.down_proj.weight").sizes() == torch::IntArrayRef({8, 12}));
  CHECK(l2.count("layers.1.mlp.down_proj.weight") == 0);  // depth halved

  // An unknown model type is bad input (exit 2) naming the key and every registered type.
  vcycle::test::write_text(dir.str("bad.yaml"), config("lama", data, dir.str("bad_out")));
  const Result bad = cli({"run", dir.str("bad.yaml"), "--quiet"});
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("model.type") && Catch::Contains("unknown model type 'lama'") &&
                          Catch::Contains(std::string("valid: gpt, bert, vit")) && Catch::Contains(kType));
  CHECK_THAT(bad.err, Catch::StartsWith("llama_vcycle: error:"));
  CHECK_FALSE(fs::exists(dir.str("bad_out")));
}
