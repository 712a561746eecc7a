// `vcycle bench peak` and `vcycle bench train` (MFU, --profile) through the real command line, with
// the peak cache in a temp directory (VCYCLE_CACHE_DIR / --cache), never the user's ~/.cache.

#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/peak_flops.h"
#include "vcycle/core/runtime.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using json = nlohmann::json;

namespace {

json read_json(const std::string& path) { return json::parse(std::ifstream(path)); }

}  // namespace

TEST_CASE("bench peak prints the GEMM table and caches the best fp32 rate which bench train reads for MFU", "[cli][bench]") {
  test::TempDir dir("bench_peak");
  test::ScopedEnv env("VCYCLE_CACHE_DIR", dir.str("cache"));
  const auto r = test::run_cli({"bench", "peak", "--threads", "1", "--seconds", "0.5", "--batch", "1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* row : {"qkv fwd", "qkv dx", "qkv dW", "attn.proj fwd", "mlp.fc dW", "mlp.proj dx", "lm head fwd", "square 512"})
    CHECK(r.output.find(row) != std::string::npos);
  // bf16 is measured exactly when the CPU has it, and said either way.
  CHECK((r.output.find("best bf16:") != std::string::npos || r.output.find("bf16: not measured") != std::string::npos));
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex("peak \\(best fp32\\): ([0-9.]+) GFLOP/s")));
  const double peak = std::stod(m[1]) * 1e9;
  CHECK(peak > 0);
  const json cache = read_json(dir.str("cache/peak_flops.json"));
  REQUIRE(cache.size() == 1);
  const json& entry = cache.begin().value();
  CHECK(cache.begin().key().find("| 1 threads | LibTorch ") != std::string::npos);
  CHECK(cache.begin().key().find("| BLAS " + openblas_core()) != std::string::npos);
  CHECK(entry["flops_per_s"].get<double>() == Approx(peak).epsilon(0.01));

  // bench train at the same thread count takes the cached peak.
  const auto t = test::run_cli({"bench", "train", "--threads", "1", "--batch", "2", "--steps", "2", "--warmup", "1",
                                "--precision", "fp32", "--json", dir.str("train.json")});
  INFO(t.output);
  REQUIRE(t.exit_code == 0);
  CHECK(t.output.find("MFU") != std::string::npos);
  const json tj = read_json(dir.str("train.json"));
  CHECK(tj["peak_source"] == "cache");
  CHECK(tj["peak_flops"].get<double>() == entry["flops_per_s"].get<double>());
  CHECK(tj["mfu"].get<double>() == Approx(tj["model_flops_per_s"].get<double>() / tj["peak_flops"].get<double>()));
  CHECK(tj["tokens_per_s"].get<double>() == Approx(2 * 128 / tj["median_step_s"].get<double>()));

  // A bf16 step is measured against the bf16 peak, never the fp32 one (where the CPU has bf16 and
  // the cache therefore a bf16 figure).
  CHECK(entry.contains("bf16_flops_per_s") == cpu_has_bf16());
  if (cpu_has_bf16()) {
    const auto b = test::run_cli({"bench", "train", "--threads", "1", "--batch", "1", "--steps", "1", "--warmup", "0",
                                  "--precision", "bf16", "--json", dir.str("bf16.json")});
    INFO(b.output);
    REQUIRE(b.exit_code == 0);
    CHECK(read_json(dir.str("bf16.json"))["peak_flops"].get<double>() == entry["bf16_flops_per_s"].get<double>());
  }

  // An explicit peak wins over the cache.
  const auto e = test::run_cli({"bench", "train", "--threads", "1", "--batch", "1", "--steps", "1", "--warmup", "0",
                                "--peak-flops", "1e12", "--json", dir.str("e.json")});
  INFO(e.output);
  REQUIRE(e.exit_code == 0);
  CHECK(read_json(dir.str("e.json"))["peak_flops"].get<double>() == 1e12);

  // Bad values are exit 2 naming the option.
  const auto bad = test::run_cli({"bench", "peak", "--seconds", "0"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("--seconds") != std::string::npos);
  const auto dev = test::run_cli({"bench", "train", "--device", "tpu"});
  CHECK(dev.exit_code == 2);
  CHECK(dev.output.find("--device") != std::string::npos);
}

TEST_CASE("bench train --profile splits a step into components that add up to it", "[cli][bench]") {
  const auto r = test::run_cli({"bench", "train", "--profile", "--threads", "1", "--batch", "2", "--steps", "2", "--warmup", "1"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  double sum = 0, total = -1;
  for (const char* c : {"matmuls", "attention", "norms+activations", "optimizer", "data", "other", "total"}) {
    std::smatch m;
    const std::string name = std::regex_replace(std::string(c), std::regex("\\+"), "\\+");  // "norms+activations"
    const std::string line = "\n" + name + " +([0-9.]+) +([0-9.]+)%";
    REQUIRE(std::regex_search(r.output, m, std::regex(line)));
    const double ms = std::stod(m[1]);
    if (std::string(c) == "total") total = ms;
    else sum += ms;
    // Every component of a GPT step costs something (the batch, two small randint calls, may round to 0).
    if (std::string(c) != "data") CHECK(ms > 0);
  }
  CHECK(sum == Approx(total).epsilon(0.02));
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex("\nmatmuls +[0-9.]+ +([0-9.]+)%")));
  CHECK(std::stod(m[1]) > 10);  // most of a step is GEMMs, even for this small model
}
