// The shipped V-cycle configs of the default GPT load and run: a 10-step smoke run of each (the
// baseline and every phase shortened, the fixture corpus in place of Austen), with each level running
// the optimizer the config names.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/metrics.h"

#include <catch2/catch.hpp>

using json = nlohmann::json;

TEST_CASE("shipped V-cycle configs: default, adamw-2level, came-2level and lamb-2level run 10 steps each", "[configs]") {
  vcycle::test::TempDir dir("shipped");
  vcycle::test::prepare_fixture_corpus(dir.str("data"));
  for (const std::string name : {"default", "adamw-2level", "came-2level", "lamb-2level"}) {
    INFO(name);
    const std::string out = dir.str(name);
    const auto r = vcycle::test::run_cli(
        {"run", vcycle::test::source_path("configs/" + name + ".yaml"), "--quiet", "--set", "threads=1",
         "--set", "data.train=" + dir.str("data/train.bin"), "--set", "data.valid=" + dir.str("data/valid.bin"),
         "--set", "data.batch_size=2", "--set", "phases[0].steps=3", "--set", "phases[1].steps=4", "--set",
         "phases[2].steps=3", "--set", "baseline.steps=10", "--set", "eval.every=5", "--set", "eval.batches=1",
         "--set", "output=" + out});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    // The default is the CAME V-cycle (configs/default.yaml); the others name their optimizer.
    const std::string expected = name == "default" ? "came" : name.substr(0, name.find('-'));
    int phases = 0;
    for (const auto& line : vcycle::read_jsonl_lines(out + "/vcycle/metrics.jsonl")) {
      const json row = json::parse(line);
      if (row["type"] != "phase_end") continue;
      ++phases;
      CHECK(row["optimizer"] == expected);
    }
    CHECK(phases == 3);
    CHECK(std::filesystem::exists(out + "/report.json"));
  }
}

// The schedule family's configs (README "Schedules"): each runs, shortened, through its walk of levels.
TEST_CASE("shipped schedule configs: growth-stack, growth-2level and vcycle-2x walk their levels", "[configs][walk]") {
  vcycle::test::TempDir dir("shipped_walks");
  vcycle::test::prepare_fixture_corpus(dir.str("data"));
  const std::vector<std::pair<std::string, std::vector<int>>> configs = {
      {"growth-stack", {2, 1}}, {"growth-2level", {2, 1}}, {"vcycle-2x", {1, 2, 1, 2, 1}}};
  for (const auto& [name, levels] : configs) {
    INFO(name);
    const std::string out = dir.str(name);
    std::vector<std::string> args = {"run", vcycle::test::source_path("configs/" + name + ".yaml"), "--quiet", "--no-baseline",
                                     "--set", "threads=1", "--set", "data.train=" + dir.str("data/train.bin"),
                                     "--set", "data.valid=" + dir.str("data/valid.bin"), "--set", "data.batch_size=2",
                                     "--set", "eval.every=5", "--set", "eval.batches=1", "--set", "output=" + out};
    for (size_t i = 0; i < levels.size(); ++i) {
      args.insert(args.end(), {"--set", "phases[" + std::to_string(i) + "].steps=2", "--set",
                               "phases[" + std::to_string(i) + "].warmup=1"});
    }
    const auto r = vcycle::test::run_cli(args);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    std::vector<int> walked;
    std::vector<std::string> ops;
    for (const auto& line : vcycle::read_jsonl_lines(out + "/vcycle/metrics.jsonl")) {
      const json row = json::parse(line);
      if (row["type"] == "phase_end") walked.push_back(row["level"].get<int>());
      if (row["type"] == "transition") ops.push_back(row["op"].get<std::string>());
    }
    CHECK(walked == levels);
    // Growth de-coalesces without a θ_pre; the repeated cycle blends at both up-steps.
    if (name == "vcycle-2x") {
      CHECK(ops == std::vector<std::string>{"coalesce", "decoalesce+interpolate", "coalesce", "decoalesce+interpolate"});
    } else {
      CHECK(ops == std::vector<std::string>{"decoalesce"});
    }
  }
}
