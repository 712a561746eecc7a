// `vcycle coalesce | decoalesce | interpolate`: the operators on checkpoint files, by hand.
//
// A checkpoint's model tensors (run_checkpoint.h) are matched against the config's level shapes to
// find their level; the output is a checkpoint holding only the new model tensors.
#include <iostream>

#include <cstdlib>

#include <fmt/format.h>

#include "commands.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/runtime.h"
#include "vcycle/models/registry.h"
#include "vcycle/operators/operators.h"
#include "vcycle/schedules/level_plan.h"
#include "vcycle/schedules/run_checkpoint.h"

namespace vcycle::cli {

namespace {

TensorMap model_tensors(const std::string& path) {
  TensorMap out = checkpoint_model(load_checkpoint(path));
  if (out.empty()) throw InputError(path + ": checkpoint holds no model tensors");
  return out;
}

// The level (1-based) whose shape the tensors have; InputError listing the shapes otherwise.
int level_of(const TensorMap& tensors, const ParamMap& map, const LevelPlan& plan, const std::string& path) {
  std::string tried;
  for (int l = 1; l <= plan.count(); ++l) {
    try {
      param_map_validate(map, tensors, plan.shape(l));
      return l;
    } catch (const InputError& e) {
      tried += fmt::format("\n  level {} ({}): {}", l, plan.shape(l).to_string(), e.what());
    }
  }
  throw InputError(path + ": its tensors match no level of the config:" + tried);
}

int64_t elements(const TensorMap& t) {
  int64_t n = 0;
  for (const auto& [name, x] : t) n += x.numel();
  return n;
}

struct OpArgs {
  std::string input, input2, config, out;
  std::vector<std::string> overrides;
  std::string alpha = "0.5";  // text: CLI11 reads an empty value as 0
  std::string mode = "fixed";
};

// --alpha: a number in [0, 1], all of the text (an empty or partly numeric value is refused).
double parse_alpha(const std::string& text) {
  char* end = nullptr;
  const double v = text.empty() ? 0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0') {
    throw InputError("--alpha: expected a number in [0, 1], got '" + text + "'");
  }
  if (!(v >= 0 && v <= 1)) throw InputError(fmt::format("--alpha must be in [0, 1], got {}", text));
  return v;
}

void move_level(const OpArgs& a, bool down) {
  require_replaceable(a.out);  // before any work: the writer would refuse it at the end
  const RunConfig cfg = load_config(a.config, a.overrides);
  runtime_init(cfg.threads);
  auto adapter = make_model(cfg);
  const LevelPlan plan(cfg, *adapter, std::max(2, cfg.levels.count));
  const ParamMap map = adapter->param_map();
  const TensorMap in = model_tensors(a.input);
  const int level = level_of(in, map, plan, a.input);
  const int to = down ? level + 1 : level - 1;
  if (to < 1 || to > plan.count()) {
    throw InputError(fmt::format("{}: the model is at level {} of {}; cannot {} it", a.input, level, plan.count(),
                                 down ? "coalesce" : "de-coalesce"));
  }
  const TensorMap out = down ? coalesce(in, map, plan.shape(level), plan.factors())
                             : decoalesce(in, map, plan.shape(to), plan.factors());
  std::cout << fmt::format("{}: level {} ({}, {} elements) -> level {} ({}, {} elements)\n", down ? "coalesce" : "decoalesce",
                           level, plan.shape(level).to_string(), elements(in), to, plan.shape(to).to_string(), elements(out));
  save_model_checkpoint(a.out, out, to);
  std::cout << "wrote " << a.out << "\n";
}

}  // namespace

void add_operator_commands(CLI::App& app) {
  auto args = std::make_shared<OpArgs>();
  for (const bool down : {true, false}) {
    auto* cmd = app.add_subcommand(down ? "coalesce" : "decoalesce",
                                   down ? "Coalesce a checkpoint's model to the next smaller level of a config"
                                        : "De-coalesce a checkpoint's model to the next larger level of a config");
    cmd->add_option("checkpoint", args->input, "input checkpoint")->required();
    cmd->add_option("--config", args->config, "run config giving the levels")->required();
    cmd->add_option("--out", args->out, "output checkpoint")->required();
    cmd->add_option("--set", args->overrides, "override a config key");
    cmd->callback([args, down] { move_level(*args, down); });
  }

  auto* in = app.add_subcommand("interpolate", "Blend two checkpoints of the same shape: (1 - alpha)·PRE + alpha·DECO");
  in->add_option("pre", args->input, "θ_pre checkpoint")->required();
  in->add_option("deco", args->input2, "de-coalesced checkpoint")->required();
  in->add_option("--alpha", args->alpha, "weight of DECO, in [0, 1]")->capture_default_str();
  in->add_option("--mode", args->mode, "fixed | norm_matched")->capture_default_str();
  in->add_option("--out", args->out, "output checkpoint")->required();
  in->callback([args] {
    const double alpha = parse_alpha(args->alpha);
    require_replaceable(args->out);
    const TensorMap pre = model_tensors(args->input), deco = model_tensors(args->input2);
    const TensorMap out = interpolate(pre, deco, alpha, parse_interpolation_mode(args->mode));
    std::cout << fmt::format("interpolate: {} tensors, {} elements, alpha {} ({})\n", out.size(), elements(out), alpha,
                             args->mode);
    save_model_checkpoint(args->out, out, 0);
    std::cout << "wrote " << args->out << "\n";
  });
}

}  // namespace vcycle::cli
