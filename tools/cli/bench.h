// The `vcycle bench` commands' shared pieces (private to tools/cli/): the named model sizes they
// run, the median and JSON output they share, and the peak, profile and attention benchmarks
// (bench_peak.cpp, bench_profile.cpp, bench_attention.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vcycle/core/peak_flops.h"
#include "vcycle/core/precision.h"
#include "vcycle/models/gpt/gpt.h"

namespace vcycle::cli {

// "default" (configs/default.yaml's model) or "gpt2-small"; InputError listing both otherwise.
GPTConfig bench_model(const std::string& name);

// The median of timed runs (the upper one of an even count); `times` must not be empty.
double median(std::vector<double> times);

// Writes `j` to `path` (atomically, indented); nothing for an empty path (no --json given).
void write_json(const std::string& path, const nlohmann::json& j);

// The GEMMs of one training step of `cfg` over `rows` tokens: forward, input and weight gradient of
// every linear layer kind (qkv, attn proj, mlp fc, mlp proj, lm head); one block's worth each.
std::vector<GemmShape> model_train_gemms(const GPTConfig& cfg, int64_t rows);

struct PeakOptions {
  std::string model = "default";
  int64_t batch = 0;     // sequences; 0 = 16 for default, 1 for gpt2-small
  double seconds = 10;   // the whole measurement's time budget
  std::string cache;     // cache file; empty = peak_cache_file()
  bool write_cache = true;
  bool quiet = false;    // no table
};

// Measures fp32 (and bf16 where the CPU has it) GEMM rates at the model's shapes and at square
// sizes 512..4096, prints the table to stdout, caches the best fp32 rate and returns it.
PeakFlops bench_peak(const PeakOptions& options);

// A run's peak for `bench train` on the CPU: `explicit_peak` (> 0), else the cache (its bf16 rate
// for `bf16`), else measured now in about `seconds` (square GEMMs, fp32 and bf16 where the CPU has
// it) and cached.
PeakFlops bench_train_peak(double explicit_peak, double seconds, bool bf16);

// `vcycle bench train --profile`: times `steps` profiled training steps of `cfg` (after `warmup`)
// on the CPU in `precision` with LibTorch's profiler and prints ms/step and % by component.
void bench_profile(const GPTConfig& cfg, const std::string& name, Precision precision, int64_t batch, int steps,
                   int warmup);

struct AttentionBenchOptions {
  std::string shapes = "all";      // default | gpt2-small | all
  std::string precision = "fp32";  // fp32 | bf16 inputs
  int rounds = 10, warmup = 2;
  std::string json_out;            // also write the rows here
};

// `vcycle bench attention`: forward + backward of the attention product, fused CPU kernel against
// LibTorch's ops, alternating rounds; prints the median times and the median ratio per shape.
void bench_attention(const AttentionBenchOptions& options);

}  // namespace vcycle::cli
