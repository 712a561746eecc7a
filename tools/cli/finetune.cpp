// `vcycle finetune`: LoRA fine-tuning of a trained checkpoint on a downstream text (finetune.h).
#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "vcycle/schedules/finetune.h"
#include "vcycle/core/runtime.h"

namespace vcycle::cli {

namespace {

std::string human_bytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = static_cast<double>(b);
  int u = 0;
  while (x >= 1024 && u < 4) {
    x /= 1024;
    ++u;
  }
  return fmt::format("{:.4g} {}", x, units[u]);
}

}  // namespace

void add_finetune_command(CLI::App& app) {
  struct Args {
    std::string config;
    std::vector<std::string> overrides;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("finetune", "Fine-tune a trained checkpoint with LoRA adapters on a downstream text");
  cmd->add_option("config", args->config, "fine-tuning config (YAML; see configs/finetune-lora.yaml)")->required();
  cmd->add_option("--set", args->overrides, "override a config key, e.g. --set lora.r=4 (repeatable)");
  cmd->add_flag("--quiet", args->quiet, "no progress lines");
  cmd->callback([args] {
    const FinetuneConfig cfg = load_finetune_config(args->config, args->overrides);
    runtime_init(cfg.threads);
    const FinetuneResult r = run_finetune(cfg, args->quiet);
    const double pct = 100.0 * static_cast<double>(r.trainable_params) / static_cast<double>(r.total_params);
    std::cout << fmt::format("LoRA layers          {} (r={}, alpha={})\n", r.layers.size(), cfg.lora.r(), cfg.lora.alpha())
              << fmt::format("trainable parameters {} of {} ({:.3f}%)\n", r.trainable_params, r.total_params, pct)
              << fmt::format("adapter memory       {} weights + {} gradients + {} optimizer state ({})\n",
                             human_bytes(r.adapter_bytes), human_bytes(r.grad_bytes), human_bytes(r.optimizer_state_bytes),
                             cfg.phase.optimizer)
              << fmt::format("frozen base          {}\n", human_bytes(r.base_param_bytes))
              << fmt::format("validation loss      {:.4f} -> {:.4f} (merged {:.4f})\n", r.loss_before, r.loss_after,
                             r.loss_merged)
              << fmt::format("adapters             {}\nsummary              {}\n", r.adapter_path, r.summary_path);
    for (const auto& [name, after] : r.metrics_after) {
      const auto before = r.metrics_before.find(name);
      std::cout << fmt::format("{:<20} {:.4f} -> {:.4f}\n", name,
                               before == r.metrics_before.end() ? NAN : before->second, after);
    }
  });
}

}  // namespace vcycle::cli
