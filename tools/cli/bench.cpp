// `vcycle bench train`: training throughput (tokens/s, model FLOP/s and MFU) of the built-in GPT at
// a named size, on random tokens, after warm-up; the median of timed steps. A step is the trainer's:
// clear the gradients, loss, backward, global-norm clip, AdamW. bench/train_gpt.py is the same model and step
// in Python. `--profile` breaks a step down by component instead (bench_profile.cpp); `bench peak`
// measures the GEMM peak MFU is against (bench_peak.cpp); `bench optim` times the optimizers.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>
// after types.h: clip_grad.h does not include what it uses
#include <torch/nn/utils/clip_grad.h>

#include "bench.h"
#include "commands.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/flops.h"
#include "vcycle/core/precision.h"
#include "vcycle/core/runtime.h"
#include "vcycle/models/attention.h"
#include "vcycle/models/cpu_kernels.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/registry.h"
#include "vcycle/optim/bench.h"
#include "vcycle/optim/registry.h"

namespace vcycle::cli {

GPTConfig bench_model(const std::string& name) {
  GPTConfig c;  // defaults = configs/default.yaml's model
  if (name == "default") return c;
  if (name == "gpt2-small") {
    c.layers = 12; c.hidden = 768; c.heads = 12; c.head_size = 64; c.ffn = 3072; c.context = 1024; c.vocab = 50257;
    return c;
  }
  throw InputError("unknown model size '" + name + "' (valid: default, gpt2-small)");
}

double median(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void write_json(const std::string& path, const nlohmann::json& j) {
  if (!path.empty()) write_file_atomic(path, j.dump(2) + "\n");
}

namespace {

using json = nlohmann::json;

// A device name torch::Device accepts ("cpu", "cuda", "cuda:1"), checked here so that a typo is
// exit 2 with the option named, not a LibTorch error.
torch::Device bench_device(const std::string& name) {
  try {
    torch::Device d(name);
    if (d.is_cuda() && !torch::cuda::is_available()) throw InputError("--device " + name + ": no CUDA device available");
    if (!d.is_cpu() && !d.is_cuda()) throw InputError("--device must be cpu or cuda[:N], got '" + name + "'");
    return d;
  } catch (const c10::Error&) {
    throw InputError("--device must be cpu or cuda[:N], got '" + name + "'");
  }
}


struct TrainArgs {
  std::string size = "default";
  int64_t batch = 16;
  int steps = 20, warmup = 3, threads = 0;
  std::string device = "cpu", precision = "auto", json_out;
  double peak_flops = 0;  // 0: the cache, else measured now (CPU); none on a GPU
  bool profile = false;
  std::string kernels;    // CPU kernels: fused | aten; "" = $VCYCLE_KERNELS or fused
};

// `--kernels ab`: the median step with each choice of CPU kernels and the median of the pairs' ratios.
void bench_train_ab(const std::vector<double>& fused, const std::vector<double>& aten, const std::string& json_out) {
  std::vector<double> ratios;
  for (size_t i = 0; i < std::min(fused.size(), aten.size()); ++i) ratios.push_back(aten[i] / fused[i]);
  std::cout << fmt::format("CPU kernels (attention, GELU) alternating by step: fused median step {:.4f} s, aten {:.4f} s; "
                           "aten/fused {:.3f} (median of {} pairs)\n",
                           median(fused), median(aten), median(ratios), ratios.size());
  write_json(json_out, json{{"kernels", "ab"},
                            {"fused_median_step_s", median(fused)},
                            {"aten_median_step_s", median(aten)},
                            {"ratio_median", median(ratios)},
                            {"pairs", ratios.size()}});
}

void bench_train(const TrainArgs& a) {
  if (a.batch <= 0) throw InputError(fmt::format("--batch must be > 0, got {}", a.batch));
  if (a.steps <= 0) throw InputError(fmt::format("--steps must be > 0, got {}", a.steps));
  if (a.peak_flops < 0) throw InputError(fmt::format("--peak-flops must be > 0, got {}", a.peak_flops));
  Precision precision;
  try {
    precision = resolve_precision(a.precision, a.device == "cpu");
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string("--precision: ") + e.what());
  }
  const GPTConfig cfg = bench_model(a.size);
  const torch::Device device = bench_device(a.device);
  // "ab": steps alternate between the fused and the ATen CPU kernels, for their ratio in one run.
  const bool ab = a.kernels == "ab";
  if (!a.kernels.empty() && !ab) set_cpu_kernels(parse_cpu_kernels(a.kernels, "--kernels"));
  const CpuKernels kernels = cpu_kernels();  // a bad VCYCLE_KERNELS fails here
  if (ab && (a.profile || !device.is_cpu())) throw InputError("--kernels ab: CPU runs without --profile only");
  if (ab && a.steps < 4) throw InputError(fmt::format("--kernels ab needs --steps >= 4, got {}", a.steps));
  runtime_init(a.threads);
  if (a.profile) {
    if (!device.is_cpu()) throw InputError("--profile profiles the CPU only (LibTorch's legacy CPU profiler)");
    bench_profile(cfg, a.size, precision, a.batch, a.steps, a.warmup);
    return;
  }
  // The peak first: measuring it (a CPU without a cached one) must not overlap the timed steps.
  std::optional<PeakFlops> peak;
  if (a.peak_flops > 0 || device.is_cpu()) peak = bench_train_peak(a.peak_flops, 2.0, precision == Precision::bf16);
  torch::manual_seed(0);
  GPT model(cfg);
  model->to(device);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto x = torch::randint(0, cfg.vocab, {a.batch, cfg.context}, opts);
  auto y = torch::randint(0, cfg.vocab, {a.batch, cfg.context}, opts);
  std::vector<double> times, ab_times[2];  // ab_times: by CpuKernels value
  for (int i = 0; i < a.warmup + a.steps; ++i) {
    // Pairs of steps, the order flipping every pair: fused, aten, aten, fused, ...
    const int which = ((i / 2) % 2 == 0) == (i % 2 == 0) ? 0 : 1;
    if (ab) set_cpu_kernels(static_cast<CpuKernels>(which));
    const auto t0 = std::chrono::steady_clock::now();
    optim::clear_grads(opt);
    torch::Tensor loss;
    {
      AutocastGuard autocast(precision, device);
      loss = model->loss(x, y);
    }
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    if (device.is_cuda()) torch::cuda::synchronize();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= a.warmup) times.push_back(dt);
    if (i >= a.warmup && ab) ab_times[which].push_back(dt);
  }

  const double step_s = median(times);
  const double tokens = static_cast<double>(a.batch * cfg.context);
  const double flops = tokens * train_flops_per_token(GPTAdapter(cfg).flop_shape(GPTAdapter(cfg).top_shape()));
  const double flop_s = flops / step_s;
  const std::string kernels_label = ab ? "ab" : device.is_cpu() ? to_string(kernels) : "aten";
  std::cout << fmt::format("model {} ({} layers, d {}, context {}), batch {}, {} {}, {} threads, kernels {}, {}\n",
                           a.size, cfg.layers, cfg.hidden, cfg.context, a.batch, device.str(), to_string(precision),
                           at::get_num_threads(), kernels_label, blas_description());
  if (ab) {
    bench_train_ab(ab_times[0], ab_times[1], a.json_out);
    return;
  }
  std::cout << fmt::format("median step {:.4f} s over {} steps: {:.0f} tokens/s, {:.2f} GFLOP/s (model FLOPs)", step_s,
                           a.steps, tokens / step_s, flop_s / 1e9);
  if (peak) {
    std::cout << fmt::format(", MFU {:.1f}% of {:.1f} GFLOP/s ({}, {})\n", 100.0 * flop_s / peak->flops_per_s,
                             peak->flops_per_s / 1e9, to_string(peak->source), peak->detail);
  } else {
    std::cout << ", no MFU (pass --peak-flops: the GEMM peak is measured on the CPU only)\n";
  }
  write_json(a.json_out, json{{"model", a.size},
                              {"batch", a.batch},
                              {"context", cfg.context},
                              {"device", device.str()},
                              {"precision", to_string(precision)},
                              {"kernels", kernels_label},
                              {"threads", at::get_num_threads()},
                              {"blas", blas_description()},
                              {"steps", a.steps},
                              {"median_step_s", step_s},
                              {"tokens_per_s", tokens / step_s},
                              {"model_flops_per_s", flop_s},
                              {"peak_flops", peak ? json(peak->flops_per_s) : json(nullptr)},
                              {"peak_source", peak ? json(to_string(peak->source)) : json(nullptr)},
                              {"mfu", peak ? json(flop_s / peak->flops_per_s) : json(nullptr)}});
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (results as ratios measured in one run)");
  bench->require_subcommand(1);
  auto args = std::make_shared<TrainArgs>();
  auto* train = bench->add_subcommand("train", "Training tokens/s, model FLOP/s and MFU of the built-in GPT at a named size");
  train->add_option("--model", args->size, "default | gpt2-small")->capture_default_str();
  train->add_option("--batch", args->batch, "sequences per step")->capture_default_str();
  train->add_option("--steps", args->steps, "timed (or profiled) steps")->capture_default_str();
  train->add_option("--warmup", args->warmup, "untimed steps first")->capture_default_str();
  train->add_option("--threads", args->threads, "intra-op threads (0 = all cores)")->capture_default_str();
  train->add_option("--device", args->device, "cpu | cuda[:N]")->capture_default_str();
  train->add_option("--precision", args->precision, "auto | fp32 | bf16 (autocast forward); auto: a run's default (bf16 on a CPU with native bf16)")->capture_default_str();
  train->add_option("--peak-flops", args->peak_flops,
                    "peak FLOP/s for MFU (default: the cached `bench peak`, else measured now on the CPU)");
  train->add_option("--kernels", args->kernels, "CPU kernels (attention, GELU; GELU only in bf16): fused | aten | ab (alternating steps, their ratio) (default: $VCYCLE_KERNELS, else fused)");
  train->add_flag("--profile", args->profile, "time by component (matmuls, attention, ...) with LibTorch's profiler");
  train->add_option("--json", args->json_out, "also write the result to this JSON file");
  train->callback([args] { bench_train(*args); });

  auto aargs = std::make_shared<AttentionBenchOptions>();
  auto athreads = std::make_shared<int>(0);
  auto* attn = bench->add_subcommand("attention", "Attention forward + backward: fused CPU kernel vs LibTorch's ops, in one run");
  attn->add_option("--shapes", aargs->shapes, "default (B16 H4 T128 h64) | gpt2-small (B1 H12 T1024 h64) | all")->capture_default_str();
  attn->add_option("--precision", aargs->precision, "fp32 | bf16 inputs")->capture_default_str();
  attn->add_option("--rounds", aargs->rounds, "timed rounds (each runs both)")->capture_default_str();
  attn->add_option("--warmup", aargs->warmup, "untimed rounds first")->capture_default_str();
  attn->add_option("--threads", *athreads, "intra-op threads (0 = all cores)")->capture_default_str();
  attn->add_option("--json", aargs->json_out, "also write the rows to this JSON file");
  attn->callback([aargs, athreads] {
    runtime_init(*athreads);
    bench_attention(*aargs);
  });

  auto pargs = std::make_shared<PeakOptions>();
  auto pthreads = std::make_shared<int>(0);
  auto* peak = bench->add_subcommand("peak", "The machine's GEMM peak FLOP/s (fp32, and bf16 where the CPU has it), cached for MFU");
  peak->add_option("--model", pargs->model, "GEMM shapes of this model's training step: default | gpt2-small")->capture_default_str();
  peak->add_option("--batch", pargs->batch, "sequences (0 = 16 for default, 1 for gpt2-small)")->capture_default_str();
  peak->add_option("--threads", *pthreads, "intra-op threads (0 = all cores)")->capture_default_str();
  peak->add_option("--seconds", pargs->seconds, "time budget of the whole measurement")->capture_default_str();
  peak->add_option("--cache", pargs->cache, "cache file (default: $VCYCLE_CACHE_DIR, $XDG_CACHE_HOME/vcycle or ~/.cache/vcycle, peak_flops.json)");
  peak->callback([pargs, pthreads] {
    bench_model(pargs->model);  // an unknown name fails before anything is measured
    runtime_init(*pthreads);
    bench_peak(*pargs);
  });

  struct OptimArgs {
    std::string shapes = "default", device = "cpu", json_out;
    int steps = 20, warmup = 3, threads = 0;
  };
  auto oargs = std::make_shared<OptimArgs>();
  auto* optim = bench->add_subcommand("optim", "Optimizer step time and state memory vs LibTorch AdamW, in one run");
  optim->add_option("--shapes", oargs->shapes, "parameter shapes: default | gpt2-small")->capture_default_str();
  optim->add_option("--steps", oargs->steps, "timed steps (>= 20)")->capture_default_str();
  optim->add_option("--warmup", oargs->warmup, "untimed steps first")->capture_default_str();
  optim->add_option("--threads", oargs->threads, "intra-op threads (0 = all cores)")->capture_default_str();
  optim->add_option("--device", oargs->device, "cpu | cuda[:N]")->capture_default_str();
  optim->add_option("--json", oargs->json_out, "also write the rows and the parameter shapes to this JSON file");
  optim->callback([oargs] {
    if (oargs->steps < 20) throw InputError("--steps must be >= 20 for a stable median, got " + std::to_string(oargs->steps));
    if (oargs->shapes != "default" && oargs->shapes != "gpt2-small") {
      throw InputError("unknown --shapes '" + oargs->shapes + "' (valid: default, gpt2-small)");
    }
    bench_device(oargs->device);
    runtime_init(oargs->threads);
    const auto rows = optim::bench_optimizers(std::cout, oargs->shapes, oargs->steps, oargs->warmup, oargs->device);
    json out{{"shapes_name", oargs->shapes}, {"device", oargs->device}, {"steps", oargs->steps}, {"warmup", oargs->warmup}};
    for (const auto& r : rows) {
      out["rows"].push_back({{"optimizer", r.name}, {"median_ms", r.median_ms}, {"min_ms", r.min_ms}, {"state_bytes", r.state_bytes}});
    }
    // The shapes, so that another program (bench/adamw_fused.py) can time the same parameters.
    for (const auto& [name, shape] : optim::bench_shapes(oargs->shapes)) out["shapes"].push_back({{"name", name}, {"shape", shape}});
    write_json(oargs->json_out, out);
  });
}

}  // namespace vcycle::cli
