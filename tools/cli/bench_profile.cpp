// `vcycle bench train --profile`: where a training step of the built-in GPT spends its time, by
// component, from LibTorch's (legacy, CPU) profiler. Every operator's self time (its time minus
// that of the operators it called) goes to one component by its name; everything inside the
// optimizer's or the batch's scope goes to those; step time no operator covers is "other".
// The legacy profiler is the one API both LibTorch 1.13 and 2.x offer with the same calls.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>
// after types.h: clip_grad.h does not include what it uses
#include <torch/nn/utils/clip_grad.h>

#include "bench.h"
#include "vcycle/core/errors.h"
#include "vcycle/optim/registry.h"

namespace vcycle::cli {

namespace {

namespace prof = torch::autograd::profiler;

constexpr const char* kOptimizerScope = "vcycle::optimizer";
constexpr const char* kDataScope = "vcycle::data";
const std::vector<std::string> kComponents{"matmuls", "attention", "norms+activations", "optimizer", "data", "other"};

bool has_any(const std::string& s, std::initializer_list<const char*> parts) {
  for (const char* p : parts)
    if (s.find(p) != std::string::npos) return true;
  return false;
}

// The component of an operator by its name (aten ops, autograd nodes such as "AddmmBackward0").
// Order matters: log_softmax is the loss, not attention; bmm (attention's batched products) is not
// the linear layers' mm.
std::string component_of(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (has_any(name, {"log_softmax", "logsoftmax", "nll_loss", "nllloss", "cross_entropy"})) return "other";
  if (has_any(name, {"bmm", "softmax", "attention", "masked_fill", "maskedfill", "tril", "triu"})) return "attention";
  if (has_any(name, {"addmm", "::mm", "mmbackward", "matmul", "linear", "addmv"})) return "matmuls";
  if (has_any(name, {"layer_norm", "layernorm", "gelu", "relu", "tanh", "dropout", "silu"})) return "norms+activations";
  return "other";
}

struct Open {
  std::string name;
  const prof::LegacyEvent* push;
  double children_us = 0;
  std::string scope;  // the optimizer or data scope this op runs in, if any
};

struct Breakdown {
  std::map<std::string, double> us;                          // component -> self time
  std::map<std::string, std::map<std::string, double>> ops;  // component -> op -> self time
  double covered_us = 0;                                     // time inside top-level ops
  size_t threads = 0;                                        // threads that recorded ops
};

Breakdown attribute(const prof::thread_event_lists& lists) {
  Breakdown b;
  for (const auto& events : lists) {
    std::vector<Open> stack;
    bool any = false;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        std::string scope = stack.empty() ? "" : stack.back().scope;
        const std::string name = e.name();
        if (name == kOptimizerScope) scope = "optimizer";
        if (name == kDataScope) scope = "data";
        stack.push_back({name, &e, 0, scope});
        any = true;
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        const Open top = stack.back();
        stack.pop_back();
        const double total = top.push->cpuElapsedUs(e);
        const double self = std::max(0.0, total - top.children_us);
        const std::string component = top.scope.empty() ? component_of(top.name) : top.scope;
        b.us[component] += self;
        b.ops[component][top.name] += self;
        if (stack.empty()) b.covered_us += total;
        else stack.back().children_us += total;
      }
    }
    if (any) ++b.threads;
  }
  return b;
}

}  // namespace

void bench_profile(const GPTConfig& cfg, const std::string& name, Precision precision, int64_t batch, int steps,
                   int warmup) {
  torch::manual_seed(0);
  GPT model(cfg);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  const auto step = [&] {
    torch::Tensor x, y;
    {
      RECORD_USER_SCOPE(kDataScope);  // a fresh random batch stands in for the token file's
      x = torch::randint(0, cfg.vocab, {batch, cfg.context}, torch::kLong);
      y = torch::randint(0, cfg.vocab, {batch, cfg.context}, torch::kLong);
    }
    {
      RECORD_USER_SCOPE(kOptimizerScope);
      optim::clear_grads(opt);
    }
    torch::Tensor loss;
    {
      AutocastGuard autocast(precision, torch::kCPU);
      loss = model->loss(x, y);
    }
    loss.backward();
    RECORD_USER_SCOPE(kOptimizerScope);  // clipping is the optimizer's (it reads every gradient)
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
  };
  for (int i = 0; i < warmup; ++i) step();
  // Unprofiled step time first, so that the profiler's own overhead can be stated.
  std::vector<double> plain;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    plain.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(plain.begin(), plain.end());
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  Breakdown b = attribute(prof::disableProfilerLegacy());
  if (b.threads == 0) throw RunError("bench train --profile: the profiler recorded no operators");
  // Step time that no operator covers (the autograd engine between nodes, the loop itself).
  b.us["other"] += std::max(0.0, wall_ms * 1e3 - b.covered_us);
  const double per_step = wall_ms / steps;
  std::cout << fmt::format("profile: model {} ({} layers, d {}, context {}), batch {}, {}, {} threads, {} profiled "
                           "steps after {} warm-up\n",
                           name, cfg.layers, cfg.hidden, cfg.context, batch, to_string(precision), at::get_num_threads(),
                           steps, warmup);
  std::cout << fmt::format("step: {:.2f} ms profiled, {:.2f} ms unprofiled (median); ops on {} thread(s)\n", per_step,
                           plain[plain.size() / 2], b.threads);
  std::cout << fmt::format("{:<18} {:>10} {:>7}  {}\n", "component", "ms/step", "%", "largest ops (ms/step)");
  double total_us = 0;
  for (const auto& [c, us] : b.us) total_us += us;
  for (const auto& c : kComponents) {
    std::vector<std::pair<double, std::string>> top;
    for (const auto& [op, us] : b.ops[c]) top.emplace_back(us, op);
    std::sort(top.rbegin(), top.rend());
    std::string ops;
    for (size_t i = 0; i < std::min<size_t>(3, top.size()); ++i)
      ops += fmt::format("{}{} {:.2f}", i ? ", " : "", top[i].second, top[i].first / 1e3 / steps);
    std::cout << fmt::format("{:<18} {:>10.2f} {:>6.1f}%  {}\n", c, b.us[c] / 1e3 / steps,
                             total_us > 0 ? 100.0 * b.us[c] / total_us : 0.0, ops);
  }
  std::cout << fmt::format("{:<18} {:>10.2f} {:>6.1f}%\n", "total", total_us / 1e3 / steps, 100.0);
}

}  // namespace vcycle::cli
