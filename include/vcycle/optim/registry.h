// Optimizers by name, built from the YAML map `optimizers.<name>` of a run's configuration.
//
//   auto opt = vcycle::optim::make_optimizer("came", named_params, 2e-4, cfg["optimizers"]["came"], "run.yaml");
//   vcycle::optim::set_learning_rate(*opt, schedule(step));  opt->step();
//   std::string bytes = vcycle::optim::save_state(*opt);    vcycle::optim::load_state(*opt, bytes);
//
// Names: "adamw" (LibTorch's torch::optim::AdamW), "came", "lamb", "adafactor". YAML keys (all optional;
// the defaults are the optimizers' own):
//   adamw      betas: [b1, b2], eps, weight_decay, no_decay
//   came       betas: [b1, b2, b3], eps: [eps1, eps2], clip_threshold, weight_decay, no_decay
//   lamb       betas: [b1, b2], eps, weight_decay, bias_correction, trust_ratio, no_decay
//   adafactor  eps: [eps1, eps2], clip_threshold, decay_rate, beta1, weight_decay, scale_parameter,
//              relative_step, warmup_init, no_decay
// Parameter groups: group 0 holds the parameters that decay, group 1 (when not empty) those that do
// not — every parameter with dim < 2 and every name containing one of the `no_decay` substrings.
// The second group gets weight_decay 0 and, for LAMB, trust_ratio false (TF-Addons excludes the same
// variables from layer adaptation as from weight decay).
// Adafactor with relative_step: true (its default) computes its own step size: the `lr` given here
// and by set_learning_rate() is not used for it (its options keep lr 0, which that mode requires).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>
#include <yaml-cpp/yaml.h>

namespace vcycle::optim {

// Builds optimizer `name` over `named_params` with learning rate `lr` and the YAML `options` (a map,
// or a null/undefined node for all defaults). `where` names the configuration (a file path); error
// messages append the line of the offending YAML node. Throws vcycle::ConfigError: an unknown name
// lists the valid names; an unknown key or a bad value names "optimizers.<name>.<key>", the value,
// and the valid keys; a no_decay pattern matching no parameter is an error.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const std::string& name, const std::vector<std::pair<std::string, torch::Tensor>>& named_params, double lr,
    const YAML::Node& options, const std::string& where);

// The valid names, in a fixed order.
const std::vector<std::string>& optimizer_names();

// Whether `name` is one of them.
bool is_optimizer_name(const std::string& name);

// The valid names as one comma-separated string, for error messages.
std::string optimizer_name_list();

// Bytes of optimizer state (all state tensors of all parameters) currently allocated. Works for the
// optimizers make_optimizer() builds; throws std::invalid_argument for other optimizer types.
int64_t state_bytes(const torch::optim::Optimizer& opt);

// Sets the learning rate of every parameter group (the trainer calls it each step with the
// schedule's value). Adafactor groups with relative_step keep their own step size (see above).
// Throws std::invalid_argument for a negative or non-finite lr.
void set_learning_rate(torch::optim::Optimizer& opt, double lr);

// Saves / loads optimizer state to / from a byte string (a torch::serialize archive), for
// checkpoints. load_state() throws vcycle::InputError when the bytes are not an archive of this
// optimizer's type and parameter groups.
std::string save_state(torch::optim::Optimizer& opt);
void load_state(torch::optim::Optimizer& opt, const std::string& bytes);

}  // namespace vcycle::optim
