// The operator commands on checkpoint files: shapes printed, round trip exact, α endpoints exact.
#include "test_util.h"
#include "vcycle/core/checkpoint.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("vcycle coalesce / decoalesce / interpolate on checkpoints", "[cli][operators]") {
  test::TempDir dir("opcli");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string cfg = dir.str("c.yaml");
  test::write_text(cfg, "threads: 1\nmodel: { type: gpt, layers: 2, hidden: 32, heads: 4, ffn: 64, context: 16 }\n"
                        "data: { train: " + dir.str("data/train.bin") + ", valid: " + dir.str("data/valid.bin") + ", batch_size: 2 }\n"
                        "levels: { count: 2 }\n"
                        "phases: [ { level: 1, steps: 2 }, { level: 2, steps: 2 }, { level: 1, steps: 2 } ]\n"
                        "baseline: { steps: 5, lr: 3e-3 }\neval: { every: 5, batches: 1 }\noutput: " + dir.str("out") + "\n");
  REQUIRE(test::run_cli({"train", cfg, "--quiet"}).exit_code == 0);
  const std::string big = dir.str("out/baseline/checkpoint.ckpt");

  const auto co = test::run_cli({"coalesce", big, "--config", cfg, "--out", dir.str("small.ckpt")});
  INFO(co.output);
  REQUIRE(co.exit_code == 0);
  CHECK_THAT(co.output, Catch::Contains("level 1 (layers=2 ffn=64 heads=32 hidden=32") &&
                            Catch::Contains("level 2 (layers=1 ffn=32 heads=16 hidden=16"));
  const auto de = test::run_cli({"decoalesce", dir.str("small.ckpt"), "--config", cfg, "--out", dir.str("deco.ckpt")});
  INFO(de.output);
  REQUIRE(de.exit_code == 0);
  REQUIRE(test::run_cli({"coalesce", dir.str("deco.ckpt"), "--config", cfg, "--out", dir.str("small2.ckpt")}).exit_code == 0);
  const auto small = load_checkpoint(dir.str("small.ckpt")).tensors;
  const auto small2 = load_checkpoint(dir.str("small2.ckpt")).tensors;
  REQUIRE(small.size() == small2.size());
  for (const auto& [name, t] : small) {
    INFO(name);
    CHECK(torch::equal(t, small2.at(name)));
  }

  REQUIRE(test::run_cli({"interpolate", big, dir.str("deco.ckpt"), "--alpha", "0", "--out", dir.str("i0.ckpt")}).exit_code == 0);
  const auto pre = load_checkpoint(big).tensors;
  for (const auto& [name, t] : load_checkpoint(dir.str("i0.ckpt")).tensors) {
    INFO(name);
    CHECK(torch::equal(t, pre.at(name)));
  }
  // Mismatched shapes (level 1 vs level 2) name the tensor; a bad alpha is refused.
  const auto bad = test::run_cli({"interpolate", big, dir.str("small.ckpt"), "--out", dir.str("x.ckpt")});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("blocks.") || Catch::Contains("weight"));
  CHECK(test::run_cli({"interpolate", big, big, "--alpha", "2", "--out", dir.str("x.ckpt")}).exit_code == 2);
  const auto top = test::run_cli({"decoalesce", big, "--config", cfg, "--out", dir.str("x.ckpt")});
  CHECK(top.exit_code == 2);
  CHECK_THAT(top.output, Catch::Contains("level 1"));
}
