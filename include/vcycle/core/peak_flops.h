// The machine's matrix-multiply peak: what MFU (model FLOPs utilisation) is measured against.
//
// MFU = model FLOP/s (flops.h's formula, over training time) / peak FLOP/s. The peak is the best
// fp32 GEMM rate measured on this machine (`vcycle bench peak`), at the model's own GEMM shapes
// and at square sizes. It is cached per machine in one JSON file, keyed by CPU model, intra-op
// threads, LibTorch version and OpenBLAS kernel family, so that a training run can report MFU without measuring anything:
//
//   $VCYCLE_CACHE_DIR/peak_flops.json, else $XDG_CACHE_HOME/vcycle/..., else ~/.cache/vcycle/...
//
// A run takes its peak from `train.peak_flops` in the config, else from that cache, else reports
// no MFU (measuring inside a run would slow it and, on a busy machine, cache a wrong figure).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/ScalarType.h>

namespace vcycle {

// One GEMM C = op(A)·op(B) with C of m × n and an inner size k: 2·m·n·k FLOPs. `a_t` / `b_t` make
// the operand a transposed view, as a linear layer's forward (x·Wᵀ) and weight gradient (dYᵀ·x) are.
struct GemmShape {
  std::string name;  // "mlp.fc fwd", "square 1024"
  int64_t m = 0, n = 0, k = 0;
  bool a_t = false, b_t = false;
};

// The three GEMMs of a linear layer (in → out) in a training step over `rows` tokens: the forward
// x·Wᵀ, the input gradient dY·W and the weight gradient dYᵀ·x.
std::vector<GemmShape> linear_train_gemms(const std::string& name, int64_t rows, int64_t in, int64_t out);

struct GemmRate {
  GemmShape shape;
  c10::ScalarType dtype = c10::kFloat;
  double flops_per_s = 0;  // 2·m·n·k / the median call time
  int calls = 0;           // timed calls
};

// Times torch::mm at `shape` in `dtype` on the CPU: one untimed call, then calls until
// `seconds` have passed (at least `min_calls`); the rate of the median call.
GemmRate time_gemm(const GemmShape& shape, c10::ScalarType dtype, double seconds, int min_calls = 3);

// True when the CPU does bf16 dot products natively (avx512_bf16 or amx_bf16 in /proc/cpuinfo).
bool cpu_has_bf16();

// /proc/cpuinfo's "model name" (or "unknown cpu").
std::string cpu_model_name();

// LibTorch's version, "1.13.0".
std::string torch_version();

// Where a peak came from.
enum class PeakSource { config, cache, measured };
std::string to_string(PeakSource s);  // "config", "cache", "measured now"

struct PeakFlops {
  double flops_per_s = 0;  // the peak: the best fp32 GEMM rate (bf16's, from resolve_peak for bf16)
  PeakSource source = PeakSource::measured;
  std::string detail;      // the GEMM it came from, e.g. "square 1024 fp32"
  std::string cpu;         // cpu_model_name() at measurement
  int threads = 0;         // intra-op threads at measurement
  std::string torch;       // torch_version() at measurement
  std::string blas;        // openblas_core() at measurement (core/runtime.h); "" for another BLAS
  std::string measured_at; // UTC, ISO 8601
  double bf16_flops_per_s = 0;  // the best bf16 GEMM rate; 0 = not measured (no native bf16)
};

// The cache file: $VCYCLE_CACHE_DIR/peak_flops.json, else $XDG_CACHE_HOME/vcycle/peak_flops.json,
// else $HOME/.cache/vcycle/peak_flops.json. Empty when none of these is set.
std::string peak_cache_file();

// The cached peak of this machine (CPU model, `threads`, LibTorch version) in `file`; nullopt when
// the file or the entry is missing. A file that is not the cache's JSON is InputError naming it.
std::optional<PeakFlops> read_cached_peak(const std::string& file, int threads);

// Adds or replaces this machine's entry in `file` (atomically; creates the directory).
void write_cached_peak(const std::string& file, const PeakFlops& peak);

// A run's peak on `device_is_cpu`: `config_peak` (> 0) if given, else the cache's entry for the
// current thread count (CPU only: a CPU measurement says nothing about a GPU); nullopt otherwise,
// with `note` saying why and how to get one. An unreadable cache is a note, not an error.
// With `bf16` (autocast matmuls in bfloat16) the cached bf16 rate is the peak where one was
// measured: against the fp32 peak, a bf16 run on a CPU with native bf16 shows MFU above 100%.
std::optional<PeakFlops> resolve_peak(double config_peak, bool device_is_cpu, bool bf16 = false,
                                      std::string* note = nullptr);

// p with its bf16 rate as the peak (a bf16 run's denominator); p unchanged where it has none.
PeakFlops as_bf16_peak(PeakFlops p);

}  // namespace vcycle
