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
