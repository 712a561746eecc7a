// The GEMM peak: shapes of a linear layer's training GEMMs, a timed GEMM, and the per-machine cache
// a run reads its MFU peak from (written to temp files only: never the user's ~/.cache).

#include <cstdlib>
#include <optional>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/peak_flops.h"
#include "vcycle/core/runtime.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("a linear layer's training GEMMs: forward, input gradient, weight gradient", "[peak]") {
  const auto g = linear_train_gemms("fc", 2048, 256, 1024);
  REQUIRE(g.size() == 3);
  // y = x·Wᵀ: (2048 × 256)·(256 × 1024)
  CHECK((g[0].m == 2048 && g[0].n == 1024 && g[0].k == 256 && g[0].b_t && !g[0].a_t));
  // dx = dy·W: (2048 × 1024)·(1024 × 256)
  CHECK((g[1].m == 2048 && g[1].n == 256 && g[1].k == 1024 && !g[1].a_t && !g[1].b_t));
  // dW = dyᵀ·x: (1024 × 2048)·(2048 × 256)
  CHECK((g[2].m == 1024 && g[2].n == 256 && g[2].k == 2048 && g[2].a_t));
  // Together 3 × the forward's 2·m·n·k: the 6·N per token of flops.h.
  double total = 0;
  for (const auto& s : g) total += 2.0 * s.m * s.n * s.k;
  CHECK(total == 6.0 * 2048 * 256 * 1024);
}

TEST_CASE("time_gemm measures a positive rate over at least min_calls calls", "[peak]") {
  const GemmRate r = time_gemm({"t", 64, 48, 32, true, false}, c10::kFloat, 0.0, 4);
  CHECK(r.calls >= 4);
  CHECK(r.flops_per_s > 0);
  CHECK(r.shape.name == "t");
}

TEST_CASE("the peak cache round-trips per CPU, thread count, LibTorch version and OpenBLAS kernels", "[peak]") {
  test::TempDir dir("peak_cache");
  const std::string file = dir.str("sub/peak_flops.json");
  CHECK_FALSE(read_cached_peak(file, 2));  // no file yet
  PeakFlops p{1.5e11, PeakSource::measured, "square 1024 fp32", cpu_model_name(), 2, torch_version(), openblas_core(), ""};
  write_cached_peak(file, p);  // creates sub/
  PeakFlops other = p;
  other.threads = 1;
  other.flops_per_s = 7e10;
  write_cached_peak(file, other);  // a second entry, the first kept
  const auto two = read_cached_peak(file, 2);
  REQUIRE(two);
  CHECK(two->flops_per_s == 1.5e11);
  CHECK(two->source == PeakSource::cache);
  CHECK(two->detail == "square 1024 fp32");
  CHECK_FALSE(two->measured_at.empty());
  REQUIRE(read_cached_peak(file, 1));
  CHECK(read_cached_peak(file, 1)->flops_per_s == 7e10);
  CHECK_FALSE(read_cached_peak(file, 3));
  // Another LibTorch's entry is not this one's.
  PeakFlops foreign = p;
  foreign.torch = "0.0.1";
  foreign.threads = 5;
  write_cached_peak(file, foreign);
  CHECK_FALSE(read_cached_peak(file, 5));
  // Nor is a peak measured with other OpenBLAS kernels (OPENBLAS_CORETYPE moves fp32 GEMMs 2x).
  PeakFlops other_kernels = p;
  other_kernels.blas = openblas_core() + "-other";
  other_kernels.threads = 6;
  write_cached_peak(file, other_kernels);
  CHECK_FALSE(read_cached_peak(file, 6));
  REQUIRE(read_cached_peak(file, 2));
  CHECK(read_cached_peak(file, 2)->blas == openblas_core());

  test::write_text(file, "not json");
  CHECK_THROWS_AS(read_cached_peak(file, 2), InputError);
}

TEST_CASE("a run's peak: the config's, else the cache's on a CPU, else none with a note", "[peak]") {
  test::TempDir dir("peak_resolve");
  test::ScopedEnv env("VCYCLE_CACHE_DIR", dir.str());
  CHECK(peak_cache_file() == dir.str("peak_flops.json"));
  std::string note;
  CHECK_FALSE(resolve_peak(0, true, false, &note));
  CHECK(note.find("vcycle bench peak") != std::string::npos);
  CHECK(note.find("train.peak_flops") != std::string::npos);

  const auto cfg = resolve_peak(2e12, false);
  REQUIRE(cfg);
  CHECK(cfg->flops_per_s == 2e12);
  CHECK(to_string(cfg->source) == "config");

  write_cached_peak(peak_cache_file(), {9e10, PeakSource::measured, "x", cpu_model_name(), at::get_num_threads(), torch_version(), openblas_core(), ""});
  const auto cached = resolve_peak(0, true);
  REQUIRE(cached);
  CHECK(cached->flops_per_s == 9e10);
  CHECK(to_string(cached->source) == "cache");
  // A bf16 run takes the bf16 rate where one was measured, else no MFU: against the fp32 peak its
  // MFU would read about twice too high.
  CHECK_FALSE(resolve_peak(0, true, true, &note));
  CHECK(note.find("no bf16 figure") != std::string::npos);
  PeakFlops both{9e10, PeakSource::measured, "x", cpu_model_name(), at::get_num_threads(), torch_version(), openblas_core(), ""};
  both.bf16_flops_per_s = 2e11;
  write_cached_peak(peak_cache_file(), both);
  CHECK(resolve_peak(0, true, true)->flops_per_s == 2e11);
  CHECK(resolve_peak(0, true, false)->flops_per_s == 9e10);
  // A CPU's figure is no GPU's peak.
  CHECK_FALSE(resolve_peak(0, false, false, &note));
  // A broken cache is a note, not an error: the run goes on without MFU.
  test::write_text(peak_cache_file(), "[1, 2]");
  CHECK_FALSE(resolve_peak(0, true, false, &note));
  CHECK(note.find("peak_flops.json") != std::string::npos);
}
