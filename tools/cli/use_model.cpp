// `vcycle generate` and `vcycle eval`: the quick checks a user makes on a trained checkpoint —
// sample text from it, and measure its validation loss on any prepared data.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "vcycle/core/distributed.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/runtime.h"
#include "vcycle/config/token_meta.h"
#include "vcycle/io/checkpoint_model.h"
#include "vcycle/io/safetensors.h"
#include "vcycle/models/gpt/gpt.h"
#include "vcycle/schedules/evaluate.h"

namespace vcycle::cli {

namespace fs = std::filesystem;

namespace {

struct GenerateArgs {
  std::string checkpoint, config, prompt;
  std::vector<std::string> overrides;
  int64_t tokens = 200;
  double temperature = 0.8;
  int64_t top_k = 40;
  uint64_t seed = 1234;
};

// nanoGPT's sampling loop: the last `context` tokens in, the last position's logits / temperature,
// cut to the top k, one token drawn; repeated. The seeded global generator makes it reproducible.
void generate(const GenerateArgs& a) {
  if (!(a.temperature > 0)) throw InputError(fmt::format("--temperature must be > 0, got {}", a.temperature));
  if (a.tokens < 0) throw InputError(fmt::format("--tokens must be >= 0, got {}", a.tokens));
  const CheckpointModel m = load_checkpoint_model(a.checkpoint, find_checkpoint_config(a.checkpoint, a.config), a.overrides);
  auto* gpt = dynamic_cast<GPTImpl*>(m.module.get());
  if (!gpt) throw InputError("generate samples from GPT models; this run's model.type is " + m.adapter->type());
  runtime_init(m.cfg.threads);
  const auto tokenizer = make_data_tokenizer(m.cfg.data);
  std::vector<uint16_t> ids = tokenizer->encode(a.prompt.empty() ? std::string("\n") : a.prompt);
  if (ids.empty()) throw InputError("--prompt encodes to no tokens");
  torch::NoGradGuard no_grad;
  torch::manual_seed(a.seed);
  const int64_t prompt_len = static_cast<int64_t>(ids.size());
  for (int64_t i = 0; i < a.tokens; ++i) {
    const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - gpt->cfg.context);
    auto idx = torch::empty({1, static_cast<int64_t>(ids.size()) - start}, torch::kLong);
    for (int64_t j = 0; j < idx.size(1); ++j) idx[0][j] = static_cast<int64_t>(ids[start + j]);
    auto logits = gpt->forward(idx).select(1, idx.size(1) - 1).squeeze(0).div(a.temperature);
    const int64_t vocab = std::min<int64_t>(logits.size(0), tokenizer->vocab_size());
    logits = logits.slice(0, 0, vocab);  // ids the tokenizer can decode
    if (a.top_k > 0 && a.top_k < vocab) {
      const auto kth = std::get<0>(logits.topk(a.top_k)).index({-1});
      logits = logits.masked_fill(logits < kth, -INFINITY);
    }
    ids.push_back(static_cast<uint16_t>(torch::multinomial(torch::softmax(logits, 0), 1).item<int64_t>()));
  }
  std::cout << tokenizer->decode(ids) << std::endl;  // before the summary on stderr
  std::cerr << fmt::format("[{} prompt + {} sampled tokens, level {}, temperature {}, top-k {}, seed {}]\n", prompt_len,
                           a.tokens, m.level, a.temperature, a.top_k, a.seed);
}

struct EvalArgs {
  std::string checkpoint, config, data, logits_out;
  std::vector<std::string> overrides;
  int64_t batches = 0;
};

void eval(const EvalArgs& a) {
  CheckpointModel m = load_checkpoint_model(a.checkpoint, find_checkpoint_config(a.checkpoint, a.config), a.overrides);
  if (!a.data.empty()) m.cfg.data.valid = a.data;
  if (a.batches < 0) throw InputError(fmt::format("--batches must be > 0, got {}", a.batches));
  if (a.batches > 0) m.cfg.eval.batches = a.batches;
  runtime_init(m.cfg.threads);
  const torch::Device device(m.cfg.device);
  m.module->to(device);
  auto batches = m.adapter->batches(m.cfg);
  const DistContext single;
  const TrainingContext ctx{*m.adapter, *m.module, *batches, device, m.cfg.precision, single};
  const EvalResult r = evaluate(ctx, "the evaluation loss");
  std::string line = fmt::format("val_loss {:.6f} nats/token", r.loss);
  if (m.adapter->reads_token_files()) {
    const double bpt = bytes_per_token(m.cfg.data.tokenizer, m.cfg.data.valid);
    if (bpt > 0) line += fmt::format(", {:.4f} bits/byte", r.loss / std::log(2.0) / bpt);
  }
  for (const auto& [name, value] : r.metrics) line += fmt::format(", {} {:.4f}", name, value);
  std::cout << line << fmt::format(" ({} on {}, {} batches, level {})\n", a.checkpoint, m.cfg.data.valid,
                                   m.cfg.eval.batches, m.level);
  if (!a.logits_out.empty()) {
    // For checking other implementations against ours: the first validation batch and its logits.
    auto* gpt = dynamic_cast<GPTImpl*>(m.module.get());
    if (!gpt) throw InputError("--logits-out is for GPT models");
    torch::NoGradGuard no_grad;
    const Batch b = batches->valid_batch(0);
    save_safetensors(a.logits_out, {{"input", b.input}, {"logits", gpt->forward(b.input.to(device)).to(torch::kCPU)}});
  }
}

}  // namespace

void add_use_model_commands(CLI::App& app) {
  auto g = std::make_shared<GenerateArgs>();
  auto* gen = app.add_subcommand("generate", "Sample text from a GPT checkpoint (any level of a run)");
  gen->add_option("checkpoint", g->checkpoint, "a run's checkpoint")->required();
  gen->add_option("--prompt", g->prompt, "text to continue (default: a newline)");
  gen->add_option("--tokens", g->tokens, "tokens to sample")->capture_default_str();
  gen->add_option("--temperature", g->temperature, "softmax temperature (> 0)")->capture_default_str();
  gen->add_option("--top-k", g->top_k, "sample among the k likeliest tokens (0: all)")->capture_default_str();
  gen->add_option("--seed", g->seed, "random seed (same seed, same text)")->capture_default_str();
  gen->add_option("--config", g->config, "the run's config (default: the run directory's config.resolved.yaml)");
  gen->add_option("--set", g->overrides, "override a config key (repeatable)");
  gen->callback([g] { generate(*g); });

  auto e = std::make_shared<EvalArgs>();
  auto* ev = app.add_subcommand("eval", "Validation loss of a checkpoint (nats/token and bits/byte; ViT: accuracy)");
  ev->add_option("checkpoint", e->checkpoint, "a run's checkpoint (any level)")->required();
  ev->add_option("--data", e->data, "validation token file (default: the config's data.valid)");
  ev->add_option("--batches", e->batches, "validation batches (default: the config's eval.batches)");
  ev->add_option("--config", e->config, "the run's config (default: the run directory's config.resolved.yaml)");
  ev->add_option("--set", e->overrides, "override a config key (repeatable)");
  ev->add_option("--logits-out", e->logits_out, "also write the first validation batch and its logits (safetensors)")
      ->group("");  // a testing aid, not in --help
  ev->callback([e] { eval(*e); });
}

}  // namespace vcycle::cli
