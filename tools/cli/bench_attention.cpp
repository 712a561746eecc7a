// `vcycle bench attention`: forward + backward time of the attention product with vcycle's fused CPU
// kernel (fused_attention.h) and with LibTorch's ops, at the default GPT's shapes and at GPT-2
// small's, causal as in the decoder. The two run in alternating rounds of one process (the order
// flips every round) and the ratio is the median of the rounds' ratios, so that it holds on a
// loaded machine where the absolute times do not.
#include <chrono>
#include <iostream>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/autograd.h>
#include <torch/types.h>

#include "bench.h"
#include "vcycle/core/errors.h"
#include "vcycle/models/attention.h"
#include "vcycle/models/cpu_kernels.h"
#include "vcycle/models/fused_attention.h"

namespace vcycle::cli {

namespace {

struct AttentionShape {
  const char* name;
  int64_t batch, heads, t, h;
};

const std::vector<AttentionShape> kShapes{{"default", 16, 4, 128, 64}, {"gpt2-small", 1, 12, 1024, 64}};

}  // namespace

void bench_attention(const AttentionBenchOptions& o) {
  if (o.shapes != "default" && o.shapes != "gpt2-small" && o.shapes != "all") {
    throw InputError("unknown --shapes '" + o.shapes + "' (valid: default, gpt2-small, all)");
  }
  if (o.rounds < 3) throw InputError(fmt::format("--rounds must be >= 3, got {}", o.rounds));
  if (o.precision != "fp32" && o.precision != "bf16") {
    throw InputError("--precision must be fp32 or bf16, got '" + o.precision + "'");
  }
  const auto dtype = o.precision == "bf16" ? torch::kBFloat16 : torch::kFloat;
  // attention() below is the ATen side; the fused kernel is called directly, as attention() would
  // send bf16 to ATen.
  const CpuKernels saved = cpu_kernels();
  set_cpu_kernels(CpuKernels::aten);
  nlohmann::json rows = nlohmann::json::array();
  std::cout << fmt::format("attention forward + backward, causal, {}, {} threads; {} rounds after {} warm-up, "
                           "fused and aten alternating\n",
                           o.precision, at::get_num_threads(), o.rounds, o.warmup);
  std::cout << fmt::format("{:<11} {:>20} {:>10} {:>10} {:>12}\n", "shapes", "B x H x T x h", "fused ms", "aten ms",
                           "aten/fused");
  for (const auto& s : kShapes) {
    if (o.shapes != "all" && o.shapes != s.name) continue;
    torch::manual_seed(0);
    // As SelfAttention makes them: strided views of one (B, T, 3, H, h) projection.
    auto qkv = torch::randn({s.batch, s.t, 3, s.heads, s.h}).to(dtype).requires_grad_();
    const auto grad_out = torch::randn({s.batch, s.heads, s.t, s.h}).to(dtype);
    auto step = [&](CpuKernels k) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto parts = qkv.permute({2, 0, 3, 1, 4}).unbind(0);
      const auto y = k == CpuKernels::fused ? fused_attention(parts[0], parts[1], parts[2], /*causal=*/true)
                                                  : attention(parts[0], parts[1], parts[2], /*causal=*/true);
      torch::autograd::grad({y}, {qkv}, {grad_out});
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    std::vector<double> fused, aten, ratio;
    for (int r = 0; r < o.warmup + o.rounds; ++r) {
      double tf, ta;
      if (r % 2 == 0) {
        tf = step(CpuKernels::fused);
        ta = step(CpuKernels::aten);
      } else {
        ta = step(CpuKernels::aten);
        tf = step(CpuKernels::fused);
      }
      if (r < o.warmup) continue;
      fused.push_back(tf);
      aten.push_back(ta);
      ratio.push_back(ta / tf);
    }
    const double mf = median(fused), ma = median(aten), mr = median(ratio);
    std::cout << fmt::format("{:<11} {:>20} {:>10.2f} {:>10.2f} {:>11.2f}x\n", s.name,
                             fmt::format("{} x {} x {} x {}", s.batch, s.heads, s.t, s.h), 1e3 * mf, 1e3 * ma, mr);
    rows.push_back({{"shapes", s.name},
                    {"batch", s.batch},
                    {"heads", s.heads},
                    {"t", s.t},
                    {"head_size", s.h},
                    {"fused_median_ms", 1e3 * mf},
                    {"aten_median_ms", 1e3 * ma},
                    {"ratio_median", mr}});
  }
  set_cpu_kernels(saved);
  write_json(o.json_out, {{"precision", o.precision}, {"threads", at::get_num_threads()}, {"rounds", o.rounds},
                          {"rows", rows}});
}

}  // namespace vcycle::cli
