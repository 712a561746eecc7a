// The matrix-multiply peak and its per-machine cache; see include/vcycle/core/peak_flops.h.
#include "vcycle/core/peak_flops.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/version.h>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/runtime.h"

namespace vcycle {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<GemmShape> linear_train_gemms(const std::string& name, int64_t rows, int64_t in, int64_t out) {
  return {{name + " fwd", rows, out, in, false, true},    // y = x·Wᵀ
          {name + " dx", rows, in, out, false, false},    // dx = dy·W
          {name + " dW", out, in, rows, true, false}};    // dW = dyᵀ·x
}

GemmRate time_gemm(const GemmShape& s, c10::ScalarType dtype, double seconds, int min_calls) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(dtype);
  // Transposed operands are views of a contiguous tensor, as autograd hands them to the BLAS.
  const torch::Tensor a = s.a_t ? torch::randn({s.k, s.m}, opts).t() : torch::randn({s.m, s.k}, opts);
  const torch::Tensor b = s.b_t ? torch::randn({s.n, s.k}, opts).t() : torch::randn({s.k, s.n}, opts);
  torch::Tensor c = torch::mm(a, b);  // untimed: first-touch of c, BLAS thread start-up
  std::vector<double> times;
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<int>(times.size()) < min_calls ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
  return GemmRate{s, dtype, median > 0 ? flops / median : 0, static_cast<int>(times.size())};
}

namespace {

// The first /proc/cpuinfo line starting with `key`, after its colon.
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  }
  return "";
}

// The BLAS's kernels are part of the machine: OpenBLAS's Haswell and SkylakeX kernels differ 2x in
// fp32 on an AVX-512 CPU (runtime.h), so a peak measured with one is no denominator for the other.
std::string cache_key(const std::string& cpu, int threads, const std::string& torch, const std::string& blas) {
  return fmt::format("{} | {} threads | LibTorch {} | BLAS {}", cpu, threads, torch, blas.empty() ? "other" : blas);
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json read_cache_json(const std::string& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return json::object();
  json doc;
  try {
    doc = json::parse(read_file(file));
  } catch (const json::exception& e) {
    throw InputError(file + ": not a peak FLOP/s cache (" + e.what() + "); delete it and rerun `vcycle bench peak`");
  }
  if (!doc.is_object()) throw InputError(file + ": not a peak FLOP/s cache (not a JSON object); delete it and rerun `vcycle bench peak`");
  return doc;
}

}  // namespace

bool cpu_has_bf16() {
  const std::string flags = " " + cpuinfo_field("flags") + " ";
  return flags.find(" avx512_bf16 ") != std::string::npos || flags.find(" amx_bf16 ") != std::string::npos;
}

std::string cpu_model_name() {
  const std::string name = cpuinfo_field("model name");
  return name.empty() ? "unknown cpu" : name;
}

std::string torch_version() {
  return fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
}

std::string to_string(PeakSource s) {
  switch (s) {
    case PeakSource::config: return "config";
    case PeakSource::cache: return "cache";
    case PeakSource::measured: return "measured now";
  }
  return "?";
}

std::string peak_cache_file() {
  const auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::string(v) : std::string();
  };
  fs::path dir;
  if (!env("VCYCLE_CACHE_DIR").empty()) dir = env("VCYCLE_CACHE_DIR");
  else if (!env("XDG_CACHE_HOME").empty()) dir = fs::path(env("XDG_CACHE_HOME")) / "vcycle";
  else if (!env("HOME").empty()) dir = fs::path(env("HOME")) / ".cache" / "vcycle";
  else return "";
  return (dir / "peak_flops.json").string();
}

std::optional<PeakFlops> read_cached_peak(const std::string& file, int threads) {
  if (file.empty()) return std::nullopt;
  const json doc = read_cache_json(file);
  const std::string key = cache_key(cpu_model_name(), threads, torch_version(), openblas_core());
  if (!doc.contains(key)) return std::nullopt;
  try {
    const json& e = doc.at(key);
    PeakFlops p;
    p.flops_per_s = e.at("flops_per_s").get<double>();
    if (!(p.flops_per_s > 0)) throw InputError(file + ": entry '" + key + "' has flops_per_s <= 0");
    p.source = PeakSource::cache;
    p.detail = e.value("detail", "");
    p.cpu = cpu_model_name();
    p.threads = threads;
    p.torch = torch_version();
    p.blas = openblas_core();
    p.measured_at = e.value("measured_at", "");
    p.bf16_flops_per_s = e.value("bf16_flops_per_s", 0.0);
    return p;
  } catch (const json::exception& e) {
    throw InputError(file + ": malformed entry '" + key + "' (" + e.what() + "); delete it and rerun `vcycle bench peak`");
  }
}

void write_cached_peak(const std::string& file, const PeakFlops& peak) {
  if (file.empty()) throw InputError("no cache directory: set VCYCLE_CACHE_DIR, XDG_CACHE_HOME or HOME");
  json doc = read_cache_json(file);
  json entry = {{"flops_per_s", peak.flops_per_s},
                {"detail", peak.detail},
                {"measured_at", peak.measured_at.empty() ? utc_now() : peak.measured_at}};
  if (peak.bf16_flops_per_s > 0) entry["bf16_flops_per_s"] = peak.bf16_flops_per_s;
  doc[cache_key(peak.cpu, peak.threads, peak.torch, peak.blas)] = entry;
  std::error_code ec;
  const fs::path dir = fs::path(file).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (ec) throw RunError(dir.string() + ": cannot create the cache directory (" + ec.message() + ")");
  write_file_atomic(file, doc.dump(2) + "\n");
}

PeakFlops as_bf16_peak(PeakFlops p) {
  if (p.bf16_flops_per_s > 0) {
    p.flops_per_s = p.bf16_flops_per_s;
    p.detail = "best bf16 GEMM";
  }
  return p;
}

std::optional<PeakFlops> resolve_peak(double config_peak, bool device_is_cpu, bool bf16, std::string* note) {
  if (config_peak > 0) {
    PeakFlops p;
    p.flops_per_s = config_peak;
    p.source = PeakSource::config;
    p.detail = "train.peak_flops";
    return p;
  }
  const auto say = [&](const std::string& why) {
    if (note != nullptr) *note = why;
    return std::nullopt;
  };
  if (!device_is_cpu) return say("no MFU: set train.peak_flops to the accelerator's peak FLOP/s");
  const std::string file = peak_cache_file();
  try {
    if (auto p = read_cached_peak(file, at::get_num_threads())) {
      if (!bf16) return p;
      // A bf16 run measured against the fp32 peak would overstate its MFU about twofold.
      if (p->bf16_flops_per_s <= 0) {
        return say(fmt::format("no MFU: the cached peak for {} threads has no bf16 figure; `vcycle bench peak "
                               "--threads {}` measures it, or set train.peak_flops",
                               at::get_num_threads(), at::get_num_threads()));
      }
      return as_bf16_peak(*p);
    }
  } catch (const InputError& e) {
    return say(std::string("no MFU: ") + e.what());  // a broken cache must not stop a run
  }
  return say(fmt::format("no MFU: no peak FLOP/s known for {} threads on this machine; `vcycle bench peak "
                         "--threads {}` measures and caches it, or set train.peak_flops",
                         at::get_num_threads(), at::get_num_threads()));
}

}  // namespace vcycle
