// Optimizer benchmark; see include/vcycle/optim/bench.h.
#include "vcycle/optim/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <yaml-cpp/yaml.h>

#include "vcycle/optim/registry.h"

namespace vcycle::optim {

namespace {

struct Dims {
  int64_t layers, hidden, heads, head_size, ffn, context, vocab;
};

std::vector<std::pair<std::string, std::vector<int64_t>>> gpt_shapes(const Dims& d) {
  const int64_t inner = d.heads * d.head_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out{{"tok_emb.weight", {d.vocab, d.hidden}},
                                                                {"pos_emb.weight", {d.context, d.hidden}}};
  for (int64_t l = 0; l < d.layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    out.push_back({b + "ln1.weight", {d.hidden}});
    out.push_back({b + "ln1.bias", {d.hidden}});
    out.push_back({b + "attn.qkv.weight", {3 * inner, d.hidden}});
    out.push_back({b + "attn.qkv.bias", {3 * inner}});
    out.push_back({b + "attn.proj.weight", {d.hidden, inner}});
    out.push_back({b + "attn.proj.bias", {d.hidden}});
    out.push_back({b + "ln2.weight", {d.hidden}});
    out.push_back({b + "ln2.bias", {d.hidden}});
    out.push_back({b + "mlp.fc.weight", {d.ffn, d.hidden}});
    out.push_back({b + "mlp.fc.bias", {d.ffn}});
    out.push_back({b + "mlp.proj.weight", {d.hidden, d.ffn}});
    out.push_back({b + "mlp.proj.bias", {d.hidden}});
  }
  out.push_back({"ln_f.weight", {d.hidden}});
  out.push_back({"ln_f.bias", {d.hidden}});
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> bench_shapes(const std::string& shapes) {
  if (shapes == "gpt2-small") return gpt_shapes({12, 768, 12, 64, 3072, 1024, 50257});
  if (shapes == "default") return gpt_shapes({4, 256, 4, 64, 1024, 128, 256});
  throw std::invalid_argument("unknown benchmark shapes '" + shapes + "'; valid: gpt2-small, default");
}

std::vector<BenchResult> run_optimizer_bench(const std::string& shapes, int steps, int warmup, const std::string& device_name) {
  const torch::Device device(device_name);
  const bool cuda = device.is_cuda();
  if (steps < 20) throw std::invalid_argument("bench_optimizers: steps must be >= 20, got " + std::to_string(steps));
  if (warmup < 0) throw std::invalid_argument("bench_optimizers: warmup must be >= 0, got " + std::to_string(warmup));
  const auto named_shapes = bench_shapes(shapes);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(1234);
  // one set of random gradients, shared read-only by every optimizer's parameters
  std::vector<torch::Tensor> grads, init;
  for (const auto& [name, shape] : named_shapes) {
    grads.push_back(at::randn(shape, gen, torch::kFloat).to(device));
    init.push_back(at::randn(shape, gen, torch::kFloat).mul_(0.02));
  }
  YAML::Node options;
  options["weight_decay"] = 0.01;
  const auto& names = optimizer_names();
  std::vector<std::vector<torch::Tensor>> params(names.size());
  std::vector<std::unique_ptr<torch::optim::Optimizer>> opts;
  for (size_t k = 0; k < names.size(); ++k) {
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (size_t i = 0; i < named_shapes.size(); ++i) {
      torch::Tensor p = init[i].to(device, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true);
      p.mutable_grad() = grads[i];
      params[k].push_back(p);
      named.emplace_back(named_shapes[i].first, p);
    }
    opts.push_back(make_optimizer(names[k], named, 1e-4, options, "bench"));
  }
  // Interleaved: every step of every optimizer runs under the same machine conditions.
  std::vector<std::vector<double>> times(names.size());
  for (int s = 0; s < warmup + steps; ++s) {
    for (size_t k = 0; k < names.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      opts[k]->step();
      if (cuda) torch::cuda::synchronize();
      const auto t1 = std::chrono::steady_clock::now();
      if (s >= warmup) times[k].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
  }
  std::vector<BenchResult> out;
  for (size_t k = 0; k < names.size(); ++k)
    out.push_back({names[k], median(times[k]), *std::min_element(times[k].begin(), times[k].end()),
                   state_bytes(*opts[k])});
  return out;
}

std::vector<BenchResult> bench_optimizers(std::ostream& out, const std::string& shapes, int steps, int warmup,
                                          const std::string& device) {
  const auto results = run_optimizer_bench(shapes, steps, warmup, device);
  int64_t numel = 0, tensors = 0;
  for (const auto& [name, shape] : bench_shapes(shapes)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    numel += n;
    ++tensors;
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "optimizer step: %s shapes, %lld parameters in %lld tensors, fp32 on %s, %d threads, median of %d "
                "steps after %d warm-up\n",
                shapes.c_str(), static_cast<long long>(numel), static_cast<long long>(tensors), device.c_str(),
                at::get_num_threads(),
                steps, warmup);
  out << line;
  std::snprintf(line, sizeof line, "%-10s %12s %10s %9s %12s %9s\n", "optimizer", "median ms", "min ms", "x AdamW",
                "state MiB", "x AdamW");
  out << line;
  const BenchResult& base = results.front();
  for (const auto& r : results) {
    std::snprintf(line, sizeof line, "%-10s %12.2f %10.2f %9.2f %12.1f %9.3f\n", r.name.c_str(), r.median_ms,
                  r.min_ms, r.median_ms / base.median_ms, static_cast<double>(r.state_bytes) / (1 << 20),
                  static_cast<double>(r.state_bytes) / static_cast<double>(base.state_bytes));
    out << line;
  }
  return results;
}

}  // namespace vcycle::optim
