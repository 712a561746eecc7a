// Optimizers by name, built from the YAML map `optimizers.<name>` of a run's configuration.
//
//   OptimizerConfig c = vcycle::optim::parse_optimizer_config("came", cfg["optimizers"]["came"], "run.yaml");
//   auto opt = vcycle::optim::make_optimizer(c, named_params, 2e-4);   // or in one step:
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
//
// Each optimizer's state, by field name (read_param_state / write_param_state), is what moving it
// between levels needs (operators/state_projection.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/optim/optimizer.h>
#include <yaml-cpp/yaml.h>

namespace vcycle::optim {

using NamedParams = std::vector<std::pair<std::string, torch::Tensor>>;

// ---- names ------------------------------------------------------------------------------------------

// The valid names, in a fixed order.
const std::vector<std::string>& optimizer_names();

// Whether `name` is one of them.
bool is_optimizer_name(const std::string& name);

// The valid names as one comma-separated string, for error messages.
std::string optimizer_name_list();

// ---- options, parsed once -----------------------------------------------------------------------------

// A `no_decay` substring and where the configuration gives it ("file:line"), for the error raised
// when it matches no parameter (known only once the parameters are).
struct NoDecayPattern {
  std::string pattern;
  std::string where;
};

// The options of one optimizer, read from `optimizers.<name>` and checked.
struct OptimizerConfig {
  std::string name;   // registry name
  std::string where;  // the configuration (a file path), for errors raised when building
  // The optimizer's own options type (torch::optim::AdamWOptions, CAMEOptions, ...) with every YAML
  // value applied; make_optimizer() sets the learning rate on a copy.
  std::shared_ptr<const torch::optim::OptimizerOptions> options;
  std::vector<NoDecayPattern> no_decay;
};

// Reads `optimizers.<name>` (a map, or a null/undefined node for all defaults). `where` names the
// configuration (a file path); messages append the line of the offending node. Throws
// vcycle::ConfigError: an unknown name lists the valid names; an unknown key or a bad value names
// "optimizers.<name>.<key>", the value, and the valid keys.
OptimizerConfig parse_optimizer_config(const std::string& name, const YAML::Node& options, const std::string& where);

// A configuration's whole `optimizers:` map, parsed: the options of every optimizer it lists, and the
// defaults for any other.
class OptimizerConfigs {
 public:
  OptimizerConfigs() = default;
  // `section` is the map (null/undefined: empty). ConfigError for a map that is not one, an unknown
  // optimizer name ("optimizers.<name>") or a bad option (see parse_optimizer_config).
  OptimizerConfigs(const YAML::Node& section, const std::string& where);
  // The options of optimizer `name`: as listed, else its defaults. ConfigError for an unknown name.
  OptimizerConfig get(const std::string& name) const;

 private:
  std::map<std::string, OptimizerConfig> listed_;
  std::string where_;
};

// ---- building ---------------------------------------------------------------------------------------

// Builds the optimizer `config` describes over `named_params` with learning rate `lr`. Throws
// vcycle::ConfigError for a negative or non-finite lr, or a no_decay pattern matching no parameter.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& config, const NamedParams& named_params,
                                                        double lr);

// The same from the YAML `options` in one step: parse_optimizer_config(name, options, where), then
// make_optimizer(). The name and lr are checked first.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name, const NamedParams& named_params,
                                                        double lr, const YAML::Node& options, const std::string& where);

// Bytes of optimizer state (all state tensors of all parameters) currently allocated. Works for the
// optimizers make_optimizer() builds; throws std::invalid_argument for other optimizer types.
int64_t state_bytes(const torch::optim::Optimizer& opt);

// Sets the learning rate of every parameter group (the trainer calls it each step with the
// schedule's value). Adafactor groups with relative_step keep their own step size (see above).
// Throws std::invalid_argument for a negative or non-finite lr.
void set_learning_rate(torch::optim::Optimizer& opt, double lr);

// Leaves every parameter of `opt` without a gradient, where LibTorch 1.13's zero_grad() fills them
// with zeros (2.x's default does the same as this): backward then hands its fresh gradient over
// instead of adding it to zeros, which saves two passes over the parameters per step. The values
// after backward are the same; optimizers skip a parameter without a gradient.
void clear_grads(torch::optim::Optimizer& opt);

// Saves / loads optimizer state to / from a byte string (a torch::serialize archive), for
// checkpoints. load_state() throws vcycle::InputError when the bytes are not an archive of this
// optimizer's type and parameter groups.
std::string save_state(torch::optim::Optimizer& opt);
void load_state(torch::optim::Optimizer& opt, const std::string& bytes);

// ---- state by field ---------------------------------------------------------------------------------

// How a state tensor relates to its parameter W, and so how it moves between levels.
enum class StateFieldKind {
  first,       // exp_avg: shaped like W, a first moment
  second,      // exp_avg_sq, max_exp_avg_sq: shaped like W, a mean square
  factor_row,  // exp_avg_sq_row, exp_avg_res_row: W[:-1], the mean over W's last axis
  factor_col,  // exp_avg_sq_col, exp_avg_res_col: W[:-2]+W[-1:], the mean over W's second-to-last axis
};

struct StateField {
  std::string name;  // the ParamState's TORCH_ARG name, e.g. "exp_avg"
  StateFieldKind kind;
};

// The state fields optimizer `name` keeps per parameter, in a fixed order. std::invalid_argument for
// an unknown name.
const std::vector<StateField>& state_fields(const std::string& name);

// The registry name of an optimizer make_optimizer() built; std::invalid_argument for other types.
std::string optimizer_name(const torch::optim::Optimizer& opt);

// One parameter's optimizer state: its defined state tensors by field name, and its step count.
struct ParamState {
  std::map<std::string, torch::Tensor> fields;
  int64_t step = 0;
};

// The state of parameter `p` in `opt` (the tensors themselves, not copies); nullopt when it has none
// yet. std::invalid_argument when `opt` is not an optimizer of the registry.
std::optional<ParamState> read_param_state(const torch::optim::Optimizer& opt, const torch::Tensor& p);

// Replaces the state of `p` in `opt` by `state` (tensors installed as given; fields not named stay
// undefined). std::invalid_argument for another optimizer type or a field `opt` does not keep.
void write_param_state(torch::optim::Optimizer& opt, const torch::Tensor& p, const ParamState& state);

}  // namespace vcycle::optim
