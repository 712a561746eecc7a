// `vcycle bench attention` and the CPU-kernel choice (VCYCLE_KERNELS, `bench train --kernels`)
// through the real command line.

#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("bench attention times fused and aten attention in one run and writes the ratio", "[cli][bench][attention]") {
  test::TempDir dir("bench_attention");
  const auto r = test::run_cli({"bench", "attention", "--shapes", "default", "--rounds", "3", "--warmup", "0",
                                "--threads", "1", "--json", dir.str("a.json")});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("16 x 4 x 128 x 64") != std::string::npos);
  CHECK(r.output.find("gpt2-small") == std::string::npos);
  const auto j = nlohmann::json::parse(std::ifstream(dir.str("a.json")));
  REQUIRE(j["rows"].size() == 1);
  const auto& row = j["rows"][0];
  CHECK(row["shapes"] == "default");
  CHECK(row["fused_median_ms"].get<double>() > 0);
  CHECK(row["aten_median_ms"].get<double>() > 0);
  CHECK(row["ratio_median"].get<double>() > 0);

  const auto bad = test::run_cli({"bench", "attention", "--shapes", "huge"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("valid: default, gpt2-small, all") != std::string::npos);
}

TEST_CASE("VCYCLE_KERNELS chooses the kernels of a program run and a bad value is exit 2", "[cli][attention]") {
  {
    test::ScopedEnv env("VCYCLE_KERNELS", "flash");
    const auto r = test::run_cli({"bench", "train", "--threads", "1", "--batch", "1", "--steps", "1", "--warmup", "0",
                                  "--peak-flops", "1e12"});
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("VCYCLE_KERNELS: unknown CPU kernels 'flash' (valid: fused, aten)") != std::string::npos);
  }
  test::ScopedEnv env("VCYCLE_KERNELS", "aten");
  const auto r = test::run_cli({"bench", "train", "--threads", "1", "--batch", "1", "--steps", "1", "--warmup", "0",
                                "--peak-flops", "1e12", "--precision", "fp32"});
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("kernels aten") != std::string::npos);
  // --kernels wins over the environment.
  const auto f = test::run_cli({"bench", "train", "--threads", "1", "--batch", "1", "--steps", "1", "--warmup", "0",
                                "--peak-flops", "1e12", "--kernels", "fused", "--precision", "fp32"});
  INFO(f.output);
  CHECK(f.exit_code == 0);
  CHECK(f.output.find("kernels fused") != std::string::npos);
  // ab: alternating steps, the ratio of the two in one run.
  test::TempDir dir("bench_train_ab");
  const auto ab = test::run_cli({"bench", "train", "--threads", "1", "--batch", "1", "--steps", "4", "--warmup", "0",
                                 "--peak-flops", "1e12", "--kernels", "ab", "--precision", "fp32", "--json", dir.str("ab.json")});
  INFO(ab.output);
  CHECK(ab.exit_code == 0);
  CHECK(ab.output.find("kernels ab") != std::string::npos);
  CHECK(ab.output.find("(median of 2 pairs)") != std::string::npos);
  const auto j = nlohmann::json::parse(std::ifstream(dir.str("ab.json")));
  CHECK(j["ratio_median"].get<double>() > 0);
  CHECK(j["pairs"] == 2);
  // bf16 too: the fused GELU takes bf16 (attention stays on ATen there).
  const auto ab16 = test::run_cli({"bench", "train", "--threads", "1", "--batch", "1", "--steps", "4", "--warmup", "0",
                                   "--peak-flops", "1e12", "--kernels", "ab", "--precision", "bf16"});
  INFO(ab16.output);
  CHECK(ab16.exit_code == 0);
  CHECK(ab16.output.find("bf16") != std::string::npos);
  CHECK(ab16.output.find("(median of 2 pairs)") != std::string::npos);
  const auto profiled = test::run_cli({"bench", "train", "--kernels", "ab", "--profile"});
  CHECK(profiled.exit_code == 2);
  CHECK(profiled.output.find("--kernels ab: CPU runs without --profile only") != std::string::npos);
  const auto few = test::run_cli({"bench", "train", "--kernels", "ab", "--steps", "3", "--precision", "fp32"});
  CHECK(few.exit_code == 2);
  CHECK(few.output.find("--steps >= 4") != std::string::npos);
  const auto bad = test::run_cli({"bench", "train", "--kernels", "flash"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("--kernels: unknown CPU kernels 'flash'") != std::string::npos);
}
