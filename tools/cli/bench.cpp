// `vcycle bench train`: training throughput (tokens/s) of the built-in GPT at a named size, on
// random tokens, after warm-up; the median of timed steps. A step is the trainer's: zero_grad, loss,
// backward, global-norm clip, AdamW. bench/train_gpt.py is the same model and step in Python.
#include <algorithm>
#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>
// after types.h: clip_grad.h does not include what it uses
#include <torch/nn/utils/clip_grad.h>

#include "commands.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/flops.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/models/registry.h"
#include "vcycle/optim/bench.h"
#include "vcycle/core/runtime.h"

namespace vcycle::cli {

namespace {

GPTConfig named_size(const std::string& name) {
  GPTConfig c;  // defaults = configs/default.yaml's model
  if (name == "default") return c;
  if (name == "gpt2-small") {
    c.layers = 12; c.hidden = 768; c.heads = 12; c.head_size = 64; c.ffn = 3072; c.context = 1024; c.vocab = 50257;
    return c;
  }
  throw InputError("unknown model size '" + name + "' (valid: default, gpt2-small)");
}

void bench_train(const std::string& size, int64_t batch, int steps, int warmup, int threads) {
  runtime_init(threads);
  const GPTConfig cfg = named_size(size);
  torch::manual_seed(0);
  GPT model(cfg);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
  auto x = torch::randint(0, cfg.vocab, {batch, cfg.context}, torch::kLong);
  auto y = torch::randint(0, cfg.vocab, {batch, cfg.context}, torch::kLong);
  std::vector<double> times;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    model->loss(x, y).backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) times.push_back(dt);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double tokens = static_cast<double>(batch * cfg.context);
  const double flops = tokens * train_flops_per_token(GPTAdapter(cfg).flop_shape(GPTAdapter(cfg).top_shape()));
  std::cout << fmt::format("model {} ({} layers, d {}, context {}), batch {}, {} threads\n", size, cfg.layers, cfg.hidden,
                           cfg.context, batch, threads);
  std::cout << fmt::format("median step {:.4f} s over {} steps: {:.0f} tokens/s, {:.2f} GFLOP/s (model FLOPs)\n", median,
                           steps, tokens / median, flops / median / 1e9);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (results as ratios measured in one run)");
  bench->require_subcommand(1);
  struct TrainArgs {
    std::string size = "default";
    int64_t batch = 16;
    int steps = 20, warmup = 3, threads = 0;
  };
  auto args = std::make_shared<TrainArgs>();
  auto* train = bench->add_subcommand("train", "Training tokens/s of the built-in GPT at a named size");
  train->add_option("--model", args->size, "default | gpt2-small")->capture_default_str();
  train->add_option("--batch", args->batch, "sequences per step")->capture_default_str();
  train->add_option("--steps", args->steps, "timed steps")->capture_default_str();
  train->add_option("--warmup", args->warmup, "untimed steps first")->capture_default_str();
  train->add_option("--threads", args->threads, "intra-op threads (0 = all cores)")->capture_default_str();
  train->callback([args] { bench_train(args->size, args->batch, args->steps, args->warmup, args->threads); });

  struct OptimArgs {
    std::string shapes = "default";
    int steps = 20, warmup = 3, threads = 0;
  };
  auto oargs = std::make_shared<OptimArgs>();
  auto* optim = bench->add_subcommand("optim", "Optimizer step time and state memory vs LibTorch AdamW, in one run");
  optim->add_option("--shapes", oargs->shapes, "parameter shapes: default | gpt2-small")->capture_default_str();
  optim->add_option("--steps", oargs->steps, "timed steps (>= 20)")->capture_default_str();
  optim->add_option("--warmup", oargs->warmup, "untimed steps first")->capture_default_str();
  optim->add_option("--threads", oargs->threads, "intra-op threads (0 = all cores)")->capture_default_str();
  optim->callback([oargs] {
    if (oargs->steps < 20) throw InputError("--steps must be >= 20 for a stable median, got " + std::to_string(oargs->steps));
    if (oargs->shapes != "default" && oargs->shapes != "gpt2-small") {
      throw InputError("unknown --shapes '" + oargs->shapes + "' (valid: default, gpt2-small)");
    }
    runtime_init(oargs->threads);
    optim::bench_optimizers(std::cout, oargs->shapes, oargs->steps, oargs->warmup);
  });
}


}  // namespace vcycle::cli
