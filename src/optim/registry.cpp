// Optimizer registry: names → optimizers built from YAML, plus state helpers. See
// include/vcycle/optim/registry.h for the contract.
#include "vcycle/optim/registry.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <torch/optim/adamw.h>
#include <torch/serialize/archive.h>

#include "common.h"
#include "vcycle/core/errors.h"
#include "vcycle/optim/adafactor.h"
#include "vcycle/optim/came.h"
#include "vcycle/optim/lamb.h"

namespace vcycle::optim {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// ---- reading the YAML map ----------------------------------------------------------------------

// Reads `optimizers.<name>`: every key must be one of `keys`; each accessor validates its value and
// throws ConfigError naming the key path, the value and the requirement.
class OptionReader {
 public:
  OptionReader(const YAML::Node& map, std::string name, std::vector<std::string> keys, std::string where)
      : map_(map), name_(std::move(name)), keys_(std::move(keys)), where_(std::move(where)) {
    if (!map_.IsDefined() || map_.IsNull()) return;
    if (!map_.IsMap())
      throw ConfigError(at(map_), "optimizers." + name_,
                        "expected a map of options (valid keys: " + join(keys_) + "), got '" + text(map_) + "'");
    for (const auto& item : map_) {
      const std::string key = item.first.IsScalar() ? item.first.Scalar() : text(item.first);
      if (std::find(keys_.begin(), keys_.end(), key) == keys_.end())
        throw ConfigError(at(item.first), path(key),
                          "unknown key '" + key + "' for optimizer '" + name_ + "'; valid keys: " + join(keys_));
    }
  }

  bool has(const std::string& key) const { return node(key).IsDefined() && !node(key).IsNull(); }

  // A number satisfying `ok` (described by `requirement`, e.g. "must be > 0").
  double number(const std::string& key, double fallback, const std::function<bool(double)>& ok,
                const std::string& requirement) const {
    if (!has(key)) return fallback;
    return number_at(node(key), key, "", ok, requirement);
  }

  // A list of exactly `count` numbers, each satisfying `ok`.
  std::vector<double> numbers(const std::string& key, std::vector<double> fallback,
                              const std::function<bool(double)>& ok, const std::string& requirement) const {
    if (!has(key)) return fallback;
    const YAML::Node n = node(key);
    if (!n.IsSequence() || n.size() != fallback.size())
      throw ConfigError(at(n), path(key),
                        "expected a list of " + std::to_string(fallback.size()) + " numbers, got '" + text(n) + "'");
    std::vector<double> out;
    for (size_t i = 0; i < n.size(); ++i)
      out.push_back(number_at(n[i], key, "[" + std::to_string(i) + "]", ok, requirement));
    return out;
  }

  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const YAML::Node n = node(key);
    try {
      if (n.IsScalar()) return n.as<bool>();
    } catch (const YAML::Exception&) {
    }
    throw ConfigError(at(n), path(key), "expected true or false, got '" + text(n) + "'");
  }

  // A list of non-empty strings, with the node of each for error messages.
  std::vector<std::pair<std::string, YAML::Node>> strings(const std::string& key) const {
    std::vector<std::pair<std::string, YAML::Node>> out;
    if (!has(key)) return out;
    const YAML::Node n = node(key);
    if (!n.IsSequence()) throw ConfigError(at(n), path(key), "expected a list of name patterns, got '" + text(n) + "'");
    for (const auto& item : n) {
      if (!item.IsScalar() || item.Scalar().empty())
        throw ConfigError(at(item), path(key), "expected a non-empty name pattern, got '" + text(item) + "'");
      out.emplace_back(item.Scalar(), item);
    }
    return out;
  }

  // "file:line" of a node (the bare `where` when the node carries no position).
  std::string at(const YAML::Node& n) const {
    if (n.IsDefined() && n.Mark().line >= 0) return where_ + ":" + std::to_string(n.Mark().line + 1);
    if (map_.IsDefined() && map_.Mark().line >= 0) return where_ + ":" + std::to_string(map_.Mark().line + 1);
    return where_;
  }
  std::string path(const std::string& key) const { return "optimizers." + name_ + "." + key; }
  YAML::Node node(const std::string& key) const {
    if (!map_.IsDefined() || !map_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    return map_[key];
  }

 private:
  static std::string text(const YAML::Node& n) {
    if (n.IsScalar()) return n.Scalar();
    std::ostringstream out;
    out << YAML::Dump(n);
    std::string s = out.str();
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
  }

  double number_at(const YAML::Node& n, const std::string& key, const std::string& index,
                   const std::function<bool(double)>& ok, const std::string& requirement) const {
    double value = 0;
    try {
      if (!n.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "not a scalar");
      value = n.as<double>();
    } catch (const YAML::Exception&) {
      throw ConfigError(at(n), path(key), key + index + " must be a number, got '" + text(n) + "'");
    }
    if (!std::isfinite(value) || !ok(value))
      throw ConfigError(at(n), path(key), key + index + " " + requirement + ", got " + n.Scalar());
    return value;
  }

  YAML::Node map_;
  std::string name_;
  std::vector<std::string> keys_;
  std::string where_;
};

const auto kUnit = [](double x) { return x >= 0 && x < 1; };
const auto kPositive = [](double x) { return x > 0; };
const auto kNonNegative = [](double x) { return x >= 0; };
const std::string kUnitText = "must be in [0, 1)";
const std::string kPositiveText = "must be > 0";
const std::string kNonNegativeText = "must be >= 0";

// ---- parameter groups -----------------------------------------------------------------------------

struct Split {
  std::vector<torch::Tensor> decay;     // dim >= 2 and not matched by no_decay
  std::vector<torch::Tensor> no_decay;  // dim < 2 or matched by a no_decay pattern
};

Split split_params(const std::vector<std::pair<std::string, torch::Tensor>>& named_params, const OptionReader& reader) {
  const auto patterns = reader.strings("no_decay");
  std::vector<bool> used(patterns.size(), false);
  std::unordered_set<const c10::TensorImpl*> seen;  // a tensor listed twice (tied weights) is updated once
  Split out;
  for (const auto& [name, tensor] : named_params) {
    if (!seen.insert(tensor.unsafeGetTensorImpl()).second) continue;
    bool excluded = tensor.dim() < 2;
    for (size_t k = 0; k < patterns.size(); ++k) {
      if (name.find(patterns[k].first) != std::string::npos) {
        excluded = true;
        used[k] = true;
      }
    }
    (excluded ? out.no_decay : out.decay).push_back(tensor);
  }
  for (size_t k = 0; k < patterns.size(); ++k) {
    if (!used[k])
      throw ConfigError(reader.at(patterns[k].second), reader.path("no_decay"),
                        "pattern '" + patterns[k].first + "' matches no parameter name");
  }
  return out;
}

// Group 0: decay options; group 1 (if any parameters): no-decay options.
template <class Options>
std::vector<torch::optim::OptimizerParamGroup> make_groups(const Split& split, const Options& decay,
                                                           const Options& no_decay) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!split.decay.empty()) groups.emplace_back(split.decay, std::make_unique<Options>(decay));
  if (!split.no_decay.empty()) groups.emplace_back(split.no_decay, std::make_unique<Options>(no_decay));
  return groups;
}

// ---- one builder per optimizer ---------------------------------------------------------------------

std::unique_ptr<torch::optim::Optimizer> make_adamw(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                                    double lr, const YAML::Node& yaml, const std::string& where) {
  OptionReader r(yaml, "adamw", {"betas", "eps", "weight_decay", "no_decay"}, where);
  torch::optim::AdamWOptions o(lr);
  const auto betas = r.numbers("betas", {std::get<0>(o.betas()), std::get<1>(o.betas())}, kUnit, kUnitText);
  o.betas({betas[0], betas[1]});
  o.eps(r.number("eps", o.eps(), kPositive, kPositiveText));
  o.weight_decay(r.number("weight_decay", o.weight_decay(), kNonNegative, kNonNegativeText));
  auto no_decay = o;
  no_decay.weight_decay(0.0);
  auto groups = make_groups(split_params(params, r), o, no_decay);
  auto opt = std::make_unique<torch::optim::AdamW>(groups, o);
  detail::restore_group_options<torch::optim::AdamWOptions>(opt->param_groups(), groups, opt->defaults(), "AdamW");
  return opt;
}

std::unique_ptr<torch::optim::Optimizer> make_came(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                                   double lr, const YAML::Node& yaml, const std::string& where) {
  OptionReader r(yaml, "came", {"betas", "eps", "clip_threshold", "weight_decay", "no_decay"}, where);
  CAMEOptions o(lr);
  const auto [b1, b2, b3] = o.betas();
  const auto betas = r.numbers("betas", {b1, b2, b3}, kUnit, kUnitText);
  o.betas({betas[0], betas[1], betas[2]});
  const auto eps = r.numbers("eps", {std::get<0>(o.eps()), std::get<1>(o.eps())}, kPositive, kPositiveText);
  o.eps({eps[0], eps[1]});
  o.clip_threshold(r.number("clip_threshold", o.clip_threshold(), kPositive, kPositiveText));
  o.weight_decay(r.number("weight_decay", o.weight_decay(), kNonNegative, kNonNegativeText));
  auto no_decay = o;
  no_decay.weight_decay(0.0);
  return std::make_unique<CAME>(make_groups(split_params(params, r), o, no_decay), o);
}

std::unique_ptr<torch::optim::Optimizer> make_lamb(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                                   double lr, const YAML::Node& yaml, const std::string& where) {
  OptionReader r(yaml, "lamb", {"betas", "eps", "weight_decay", "bias_correction", "trust_ratio", "no_decay"}, where);
  LAMBOptions o(lr);
  const auto betas = r.numbers("betas", {std::get<0>(o.betas()), std::get<1>(o.betas())}, kUnit, kUnitText);
  o.betas({betas[0], betas[1]});
  o.eps(r.number("eps", o.eps(), kPositive, kPositiveText));
  o.weight_decay(r.number("weight_decay", o.weight_decay(), kNonNegative, kNonNegativeText));
  o.bias_correction(r.boolean("bias_correction", o.bias_correction()));
  o.trust_ratio(r.boolean("trust_ratio", o.trust_ratio()));
  auto no_decay = o;
  no_decay.weight_decay(0.0).trust_ratio(false);
  return std::make_unique<LAMB>(make_groups(split_params(params, r), o, no_decay), o);
}

std::unique_ptr<torch::optim::Optimizer> make_adafactor(
    const std::vector<std::pair<std::string, torch::Tensor>>& params, double lr, const YAML::Node& yaml,
    const std::string& where) {
  OptionReader r(yaml, "adafactor",
                 {"eps", "clip_threshold", "decay_rate", "beta1", "weight_decay", "scale_parameter", "relative_step",
                  "warmup_init", "no_decay"},
                 where);
  AdafactorOptions o;
  const auto eps = r.numbers("eps", {std::get<0>(o.eps()), std::get<1>(o.eps())}, kPositive, kPositiveText);
  o.eps({eps[0], eps[1]});
  o.clip_threshold(r.number("clip_threshold", o.clip_threshold(), kPositive, kPositiveText));
  o.decay_rate(r.number("decay_rate", o.decay_rate(), [](double x) { return x <= 0; }, "must be <= 0"));
  o.beta1(r.number("beta1", o.beta1(), kUnit, kUnitText));
  o.weight_decay(r.number("weight_decay", o.weight_decay(), kNonNegative, kNonNegativeText));
  o.scale_parameter(r.boolean("scale_parameter", o.scale_parameter()));
  o.relative_step(r.boolean("relative_step", o.relative_step()));
  o.warmup_init(r.boolean("warmup_init", o.warmup_init()));
  if (o.warmup_init() && !o.relative_step())
    throw ConfigError(r.at(r.node("warmup_init")), r.path("warmup_init"),
                      "warmup_init: true requires relative_step: true");
  if (!o.relative_step()) o.lr(lr);  // with relative_step the step size comes from the step count
  auto no_decay = o;
  no_decay.weight_decay(0.0);
  return std::make_unique<Adafactor>(make_groups(split_params(params, r), o, no_decay), o);
}

}  // namespace

// ---- public interface -------------------------------------------------------------------------------

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names{"adamw", "came", "lamb", "adafactor"};
  return names;
}

bool is_optimizer_name(const std::string& name) {
  const auto& names = optimizer_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string optimizer_name_list() { return join(optimizer_names()); }

std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const std::string& name, const std::vector<std::pair<std::string, torch::Tensor>>& named_params, double lr,
    const YAML::Node& options, const std::string& where) {
  if (!is_optimizer_name(name))
    throw ConfigError(where, "optimizer", "unknown optimizer '" + name + "'; valid names: " + optimizer_name_list());
  if (!std::isfinite(lr) || lr < 0)
    throw ConfigError(where, "lr", "the learning rate must be a finite number >= 0, got " + std::to_string(lr));
  try {
    if (name == "adamw") return make_adamw(named_params, lr, options, where);
    if (name == "came") return make_came(named_params, lr, options, where);
    if (name == "lamb") return make_lamb(named_params, lr, options, where);
    return make_adafactor(named_params, lr, options, where);
  } catch (const c10::Error& e) {  // a check inside an optimizer that the YAML checks did not anticipate
    throw ConfigError(where, "optimizers." + name, e.what_without_backtrace());
  }
}

int64_t state_bytes(const torch::optim::Optimizer& opt) {
  using detail::tensor_bytes;
  int64_t total = 0;
  for (const auto& item : opt.state()) {
    const torch::optim::OptimizerParamState* s = item.second.get();
    if (const auto* c = dynamic_cast<const CAMEParamState*>(s)) {
      total += tensor_bytes(c->exp_avg()) + tensor_bytes(c->exp_avg_sq_row()) + tensor_bytes(c->exp_avg_sq_col()) +
               tensor_bytes(c->exp_avg_res_row()) + tensor_bytes(c->exp_avg_res_col()) + tensor_bytes(c->exp_avg_sq());
    } else if (const auto* l = dynamic_cast<const LAMBParamState*>(s)) {
      total += tensor_bytes(l->exp_avg()) + tensor_bytes(l->exp_avg_sq());
    } else if (const auto* a = dynamic_cast<const AdafactorParamState*>(s)) {
      total += tensor_bytes(a->exp_avg()) + tensor_bytes(a->exp_avg_sq_row()) + tensor_bytes(a->exp_avg_sq_col()) +
               tensor_bytes(a->exp_avg_sq());
    } else if (const auto* w = dynamic_cast<const torch::optim::AdamWParamState*>(s)) {
      total += tensor_bytes(w->exp_avg()) + tensor_bytes(w->exp_avg_sq()) + tensor_bytes(w->max_exp_avg_sq());
    } else {
      throw std::invalid_argument("state_bytes: unsupported optimizer state type");
    }
  }
  return total;
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  if (!std::isfinite(lr) || lr < 0)
    throw std::invalid_argument("set_learning_rate: lr must be a finite number >= 0, got " + std::to_string(lr));
  for (auto& group : opt.param_groups()) {
    if (const auto* a = dynamic_cast<const AdafactorOptions*>(&group.options()); a != nullptr && a->relative_step())
      continue;
    group.options().set_lr(lr);
  }
}

std::string save_state(torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load_state(torch::optim::Optimizer& opt, const std::string& bytes) {
  c10::optional<torch::Device> device;
  for (const auto& group : opt.param_groups())
    if (!device && !group.params().empty()) device = group.params().front().device();
  try {
    torch::serialize::InputArchive archive;
    std::istringstream in(bytes);
    archive.load_from(in, device);
    opt.load(archive);
  } catch (const c10::Error& e) {
    throw InputError(std::string("cannot load optimizer state: ") + e.what_without_backtrace());
  }
  // every loaded first moment must fit its parameter (the other state tensors are checked per step)
  for (const auto& group : opt.param_groups()) {
    for (const auto& p : group.params()) {
      auto it = opt.state().find(detail::state_key(p));
      if (it == opt.state().end()) continue;
      torch::Tensor m;
      if (const auto* w = dynamic_cast<const torch::optim::AdamWParamState*>(it->second.get())) m = w->exp_avg();
      if (const auto* c = dynamic_cast<const CAMEParamState*>(it->second.get())) m = c->exp_avg();
      if (const auto* l = dynamic_cast<const LAMBParamState*>(it->second.get())) m = l->exp_avg();
      if (const auto* a = dynamic_cast<const AdafactorParamState*>(it->second.get())) m = a->exp_avg();
      if (m.defined() && m.sizes() != p.sizes()) {
        std::ostringstream msg;
        msg << "cannot load optimizer state: a state of shape " << m.sizes() << " belongs to a parameter of shape "
            << p.sizes();
        throw InputError(msg.str());
      }
    }
  }
}

}  // namespace vcycle::optim
