// `vcycle bench peak`: the machine's measured matrix-multiply peak (core/peak_flops.h) at the
// GEMM shapes of a model's training step and at square sizes, fp32 and (where the CPU has native
// bf16) bf16; the best fp32 rate is the peak, and it is cached for MFU.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <tuple>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "bench.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/runtime.h"

namespace vcycle::cli {

std::vector<GemmShape> model_train_gemms(const GPTConfig& c, int64_t rows) {
  const int64_t inner = c.heads * c.head_size;
  std::vector<GemmShape> out;
  for (const auto& [name, in, outw] : std::vector<std::tuple<std::string, int64_t, int64_t>>{
           {"qkv", c.hidden, 3 * inner}, {"attn.proj", inner, c.hidden}, {"mlp.fc", c.hidden, c.ffn},
           {"mlp.proj", c.ffn, c.hidden}, {"lm head", c.hidden, c.vocab}}) {
    for (auto& g : linear_train_gemms(name, rows, in, outw)) out.push_back(g);
  }
  return out;
}

namespace {

const char* dtype_name(c10::ScalarType t) { return t == c10::kBFloat16 ? "bf16" : "fp32"; }

std::string gemm_label(const GemmRate& r) { return fmt::format("{} {}", r.shape.name, dtype_name(r.dtype)); }

// Square GEMMs 512..4096, `budget` seconds each: a size is skipped when one call would take more than
// a third of that at the best rate seen so far (`rate_guess` before the first; 0 = none).
std::vector<GemmRate> time_squares(c10::ScalarType dtype, double budget, double rate_guess,
                                   std::vector<std::string>* skipped) {
  std::vector<GemmRate> out;
  double best = rate_guess;
  for (int64_t n : {512, 1024, 2048, 4096}) {
    const double call = best > 0 ? 2.0 * static_cast<double>(n * n) * static_cast<double>(n) / best : 0;
    if (call > budget / 3) {
      skipped->push_back(fmt::format("square {} {} (one call ~{:.1f} s)", n, dtype_name(dtype), call));
      continue;
    }
    out.push_back(time_gemm({fmt::format("square {}", n), n, n, n}, dtype, budget, 3));
    best = std::max(best, out.back().flops_per_s);
  }
  return out;
}

}  // namespace

PeakFlops bench_peak(const PeakOptions& o) {
  if (!(o.seconds > 0)) throw InputError(fmt::format("--seconds must be > 0, got {}", o.seconds));
  if (o.batch < 0) throw InputError(fmt::format("--batch must be >= 0, got {}", o.batch));
  const GPTConfig cfg = bench_model(o.model);
  const int64_t batch = o.batch > 0 ? o.batch : (o.model == "gpt2-small" ? 1 : 16);
  const std::vector<GemmShape> gemms = model_train_gemms(cfg, batch * cfg.context);
  std::vector<c10::ScalarType> dtypes{c10::kFloat};
  if (cpu_has_bf16()) dtypes.push_back(c10::kBFloat16);
  // The budget: per dtype, half for the model's GEMMs (shared evenly) and half for the squares.
  const double per_dtype = o.seconds / static_cast<double>(dtypes.size());
  const double per_gemm = per_dtype / 2 / static_cast<double>(gemms.size());
  std::vector<GemmRate> rates;
  std::vector<std::string> skipped;
  for (c10::ScalarType dt : dtypes) {
    double best = 0;
    for (const auto& g : gemms) {
      rates.push_back(time_gemm(g, dt, per_gemm, 2));
      best = std::max(best, rates.back().flops_per_s);
    }
    for (auto& r : time_squares(dt, per_dtype / 2 / 4, best, &skipped)) rates.push_back(r);
  }
  const auto best_of = [&](c10::ScalarType dt) {
    const GemmRate* best = nullptr;
    for (const auto& r : rates)
      if (r.dtype == dt && (best == nullptr || r.flops_per_s > best->flops_per_s)) best = &r;
    return best;
  };
  const GemmRate* peak = best_of(c10::kFloat);
  PeakFlops p;
  p.flops_per_s = peak->flops_per_s;
  p.source = PeakSource::measured;
  p.detail = gemm_label(*peak);
  p.cpu = cpu_model_name();
  p.threads = at::get_num_threads();
  p.torch = torch_version();
  p.blas = openblas_core();
  if (const GemmRate* b = best_of(c10::kBFloat16)) p.bf16_flops_per_s = b->flops_per_s;
  if (!o.quiet) {
    std::cout << fmt::format("GEMM peak: {}, {} threads, LibTorch {}, {}; model {} at {} rows (batch {} x context {}); "
                             "median call of each\n",
                             p.cpu, p.threads, p.torch, blas_description(), o.model, batch * cfg.context, batch, cfg.context);
    std::cout << fmt::format("{:<18} {:>7} {:>7} {:>7} {:>5} {:>10} {:>6}\n", "gemm", "m", "n", "k", "dtype", "GFLOP/s", "calls");
    for (const auto& r : rates) {
      std::cout << fmt::format("{:<18} {:>7} {:>7} {:>7} {:>5} {:>10.1f} {:>6}\n", r.shape.name, r.shape.m, r.shape.n,
                               r.shape.k, dtype_name(r.dtype), r.flops_per_s / 1e9, r.calls);
    }
    for (const auto& s : skipped) std::cout << "skipped: " << s << "\n";
    if (dtypes.size() == 1) std::cout << "bf16: not measured (the CPU has neither avx512_bf16 nor amx_bf16)\n";
    if (const GemmRate* b = best_of(c10::kBFloat16)) {
      std::cout << fmt::format("best bf16: {:.1f} GFLOP/s ({}), {:.2f}x fp32\n", b->flops_per_s / 1e9, gemm_label(*b),
                               b->flops_per_s / p.flops_per_s);
    }
    std::cout << fmt::format("peak (best fp32): {:.1f} GFLOP/s ({})\n", p.flops_per_s / 1e9, p.detail);
  }
  if (o.write_cache) {
    const std::string file = o.cache.empty() ? peak_cache_file() : o.cache;
    write_cached_peak(file, p);
    if (!o.quiet) std::cout << "cached in " << file << "\n";
  }
  return p;
}

PeakFlops bench_train_peak(double explicit_peak, double seconds, bool bf16) {
  if (explicit_peak > 0) {
    PeakFlops p = *resolve_peak(explicit_peak, true);
    p.detail = "--peak-flops";
    return p;
  }
  const std::string file = peak_cache_file();
  // Without native bf16 there is no bf16 figure to wait for: the fp32 entry serves (and bounds) it.
  const bool with_bf16 = cpu_has_bf16();
  if (auto cached = resolve_peak(0, true, bf16 && with_bf16)) return *cached;
  // Square GEMMs alone: quick, and the best of them is the fp32 peak on every machine measured.
  // bf16 too where the CPU has it, so that the cached entry serves bf16 runs as well.
  const auto best_square = [&](c10::ScalarType dt, double budget) {
    std::vector<std::string> skipped;
    GemmRate best;
    for (const auto& r : time_squares(dt, budget / 4, 0, &skipped))
      if (r.flops_per_s > best.flops_per_s) best = r;
    return best;
  };
  const GemmRate fp32 = best_square(c10::kFloat, with_bf16 ? seconds / 2 : seconds);
  PeakFlops p{fp32.flops_per_s, PeakSource::measured, gemm_label(fp32), cpu_model_name(), at::get_num_threads(), torch_version(), openblas_core(), ""};
  if (with_bf16) p.bf16_flops_per_s = best_square(c10::kBFloat16, seconds / 2).flops_per_s;
  if (!file.empty()) write_cached_peak(file, p);
  return bf16 ? as_bf16_peak(p) : p;
}

}  // namespace vcycle::cli
