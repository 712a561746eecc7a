// Optimizer registry: one table of the optimizers (name, YAML options, factory, state fields) and
// everything built on it. See include/vcycle/optim/registry.h for the contract.
#include "vcycle/optim/registry.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <unordered_set>

#include <torch/optim/adamw.h>
#include <torch/serialize/archive.h>

#include "common.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/yaml_util.h"
#include "vcycle/optim/adafactor.h"
#include "vcycle/optim/came.h"
#include "vcycle/optim/lamb.h"

namespace vcycle::optim {

namespace {

using Groups = std::vector<torch::optim::OptimizerParamGroup>;

std::string join_names(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// ---- reading option values (on top of YamlReader) -----------------------------------------------------

// A condition on a number, and how a message states it.
struct Rule {
  bool (*ok)(double);
  const char* text;
};
const Rule kUnit{[](double x) { return x >= 0 && x < 1; }, "must be in [0, 1)"};
const Rule kPositive{[](double x) { return x > 0; }, "must be > 0"};
const Rule kNonNegative{[](double x) { return x >= 0; }, "must be >= 0"};
const Rule kNonPositive{[](double x) { return x <= 0; }, "must be <= 0"};

// A node as written, on one line (for messages).
std::string text_of(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  std::ostringstream out;
  out << YAML::Dump(n);
  std::string s = out.str();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// `key` + `index` ("betas[2]") of the map `r` reads, as a number satisfying `rule`.
double number_at(const YamlReader& r, const YAML::Node& n, const std::string& key, const std::string& index, Rule rule) {
  double value = 0;
  try {
    if (!n.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "not a scalar");
    value = n.as<double>();
  } catch (const YAML::Exception&) {
    throw ConfigError(yaml_where(r.file(), n), r.key_path(key), key + index + " must be a number, got '" + text_of(n) + "'");
  }
  if (!std::isfinite(value) || !rule.ok(value))
    throw ConfigError(yaml_where(r.file(), n), r.key_path(key), key + index + " " + rule.text + ", got " + n.Scalar());
  return value;
}

double number(YamlReader& r, const std::string& key, double fallback, Rule rule) {
  const YAML::Node n = r.node(key);
  return r.has(key) ? number_at(r, n, key, "", rule) : fallback;
}

// A list of exactly fallback.size() numbers, each satisfying `rule`.
std::vector<double> numbers(YamlReader& r, const std::string& key, std::vector<double> fallback, Rule rule) {
  const YAML::Node n = r.node(key);
  if (!r.has(key)) return fallback;
  if (!n.IsSequence() || n.size() != fallback.size())
    throw ConfigError(yaml_where(r.file(), n), r.key_path(key),
                      "expected a list of " + std::to_string(fallback.size()) + " numbers, got '" + text_of(n) + "'");
  std::vector<double> out;
  for (size_t i = 0; i < n.size(); ++i) out.push_back(number_at(r, n[i], key, "[" + std::to_string(i) + "]", rule));
  return out;
}

bool boolean(YamlReader& r, const std::string& key, bool fallback) { return r.get_or<bool>(key, fallback); }

// `no_decay`: a list of non-empty name substrings, each with its place in the file.
std::vector<NoDecayPattern> no_decay_patterns(YamlReader& r) {
  std::vector<NoDecayPattern> out;
  const YAML::Node n = r.node("no_decay");
  if (!r.has("no_decay")) return out;
  if (!n.IsSequence())
    throw ConfigError(yaml_where(r.file(), n), r.key_path("no_decay"),
                      "expected a list of name patterns, got '" + text_of(n) + "'");
  for (const auto& item : n) {
    if (!item.IsScalar() || item.Scalar().empty())
      throw ConfigError(yaml_where(r.file(), item), r.key_path("no_decay"),
                        "expected a non-empty name pattern, got '" + text_of(item) + "'");
    out.push_back({item.Scalar(), yaml_where(r.file(), item)});
  }
  return out;
}

// A parameter's state tensors by field.
struct FieldRef {
  const char* name;
  StateFieldKind kind;
  torch::Tensor* tensor;
};

// ---- one description per optimizer ---------------------------------------------------------------------
// Each gives its types, name, YAML keys (in the order messages list them), how to read the options
// and its state fields; and, where it differs from SpecBase's common case, how the no-decay group's
// options differ, how the learning rate applies and how to construct it from parameter groups.

// betas: [b1, b2], eps and weight_decay, the keys AdamW and LAMB share.
template <class Options>
void read_adam_keys(YamlReader& r, Options& o) {
  const auto betas = numbers(r, "betas", {std::get<0>(o.betas()), std::get<1>(o.betas())}, kUnit);
  o.betas({betas[0], betas[1]});
  o.eps(number(r, "eps", o.eps(), kPositive));
  o.weight_decay(number(r, "weight_decay", o.weight_decay(), kNonNegative));
}

template <class Opt, class Opts, class St>
struct SpecBase {
  using Optimizer = Opt;
  using Options = Opts;
  using State = St;
  static void exempt(Options& o) { o.weight_decay(0.0); }  // the no-decay group's options
  static void set_lr(Options& o, double lr) { o.lr(lr); }
  static std::unique_ptr<torch::optim::Optimizer> build(const Groups& groups, const Options& defaults) {
    return std::make_unique<Optimizer>(groups, defaults);
  }
};

struct AdamWSpec : SpecBase<torch::optim::AdamW, torch::optim::AdamWOptions, torch::optim::AdamWParamState> {
  static constexpr const char* kName = "adamw";
  static std::vector<std::string> keys() { return {"betas", "eps", "weight_decay", "no_decay"}; }
  static Options parse(YamlReader& r) {
    Options o;
    read_adam_keys(r, o);
    return o;
  }
  static std::vector<FieldRef> fields(State& s) {
    return {{"exp_avg", StateFieldKind::first, &s.exp_avg()},
            {"exp_avg_sq", StateFieldKind::second, &s.exp_avg_sq()},
            {"max_exp_avg_sq", StateFieldKind::second, &s.max_exp_avg_sq()}};
  }
  // LibTorch 2.x's AdamW replaces the options of our groups by its defaults (common.h, seam 2).
  static std::unique_ptr<torch::optim::Optimizer> build(const Groups& groups, const Options& defaults) {
    auto opt = std::make_unique<Optimizer>(groups, defaults);
    detail::restore_group_options<Options>(opt->param_groups(), groups, opt->defaults(), "AdamW");
    return opt;
  }
};

struct CAMESpec : SpecBase<CAME, CAMEOptions, CAMEParamState> {
  static constexpr const char* kName = "came";
  static std::vector<std::string> keys() { return {"betas", "eps", "clip_threshold", "weight_decay", "no_decay"}; }
  static Options parse(YamlReader& r) {
    Options o;
    const auto [b1, b2, b3] = o.betas();
    const auto betas = numbers(r, "betas", {b1, b2, b3}, kUnit);
    o.betas({betas[0], betas[1], betas[2]});
    const auto eps = numbers(r, "eps", {std::get<0>(o.eps()), std::get<1>(o.eps())}, kPositive);
    o.eps({eps[0], eps[1]});
    o.clip_threshold(number(r, "clip_threshold", o.clip_threshold(), kPositive));
    o.weight_decay(number(r, "weight_decay", o.weight_decay(), kNonNegative));
    return o;
  }
  static std::vector<FieldRef> fields(State& s) {
    return {{"exp_avg", StateFieldKind::first, &s.exp_avg()},
            {"exp_avg_sq_row", StateFieldKind::factor_row, &s.exp_avg_sq_row()},
            {"exp_avg_sq_col", StateFieldKind::factor_col, &s.exp_avg_sq_col()},
            {"exp_avg_res_row", StateFieldKind::factor_row, &s.exp_avg_res_row()},
            {"exp_avg_res_col", StateFieldKind::factor_col, &s.exp_avg_res_col()},
            {"exp_avg_sq", StateFieldKind::second, &s.exp_avg_sq()}};
  }
};

struct LAMBSpec : SpecBase<LAMB, LAMBOptions, LAMBParamState> {
  static constexpr const char* kName = "lamb";
  static std::vector<std::string> keys() {
    return {"betas", "eps", "weight_decay", "bias_correction", "trust_ratio", "no_decay"};
  }
  static Options parse(YamlReader& r) {
    Options o;
    read_adam_keys(r, o);
    o.bias_correction(boolean(r, "bias_correction", o.bias_correction()));
    o.trust_ratio(boolean(r, "trust_ratio", o.trust_ratio()));
    return o;
  }
  // TF-Addons excludes the same variables from layer adaptation as from weight decay.
  static void exempt(Options& o) { o.weight_decay(0.0).trust_ratio(false); }
  static std::vector<FieldRef> fields(State& s) {
    return {{"exp_avg", StateFieldKind::first, &s.exp_avg()}, {"exp_avg_sq", StateFieldKind::second, &s.exp_avg_sq()}};
  }
};

struct AdafactorSpec : SpecBase<Adafactor, AdafactorOptions, AdafactorParamState> {
  static constexpr const char* kName = "adafactor";
  static std::vector<std::string> keys() {
    return {"eps", "clip_threshold", "decay_rate", "beta1", "weight_decay", "scale_parameter", "relative_step",
            "warmup_init", "no_decay"};
  }
  static Options parse(YamlReader& r) {
    Options o;
    const auto eps = numbers(r, "eps", {std::get<0>(o.eps()), std::get<1>(o.eps())}, kPositive);
    o.eps({eps[0], eps[1]});
    o.clip_threshold(number(r, "clip_threshold", o.clip_threshold(), kPositive));
    o.decay_rate(number(r, "decay_rate", o.decay_rate(), kNonPositive));
    o.beta1(number(r, "beta1", o.beta1(), kUnit));
    o.weight_decay(number(r, "weight_decay", o.weight_decay(), kNonNegative));
    o.scale_parameter(boolean(r, "scale_parameter", o.scale_parameter()));
    o.relative_step(boolean(r, "relative_step", o.relative_step()));
    o.warmup_init(boolean(r, "warmup_init", o.warmup_init()));
    if (o.warmup_init() && !o.relative_step()) r.fail("warmup_init", "warmup_init: true requires relative_step: true");
    return o;
  }
  // With relative_step the step size comes from the step count (and lr must stay 0).
  static void set_lr(Options& o, double lr) {
    if (!o.relative_step()) o.lr(lr);
  }
  static std::vector<FieldRef> fields(State& s) {
    return {{"exp_avg", StateFieldKind::first, &s.exp_avg()},
            {"exp_avg_sq_row", StateFieldKind::factor_row, &s.exp_avg_sq_row()},
            {"exp_avg_sq_col", StateFieldKind::factor_col, &s.exp_avg_sq_col()},
            {"exp_avg_sq", StateFieldKind::second, &s.exp_avg_sq()}};
  }
};

// ---- the table -------------------------------------------------------------------------------------

// What the registry does with an optimizer, the same for all: implemented once over a Spec.
class Entry {
 public:
  virtual ~Entry() = default;
  virtual std::string name() const = 0;
  virtual std::vector<std::string> keys() const = 0;
  virtual std::shared_ptr<const torch::optim::OptimizerOptions> parse(YamlReader& r) const = 0;
  virtual std::unique_ptr<torch::optim::Optimizer> build(const torch::optim::OptimizerOptions& options, double lr,
                                                         const std::vector<torch::Tensor>& decay,
                                                         const std::vector<torch::Tensor>& no_decay) const = 0;
  virtual void set_lr(torch::optim::OptimizerOptions& options, double lr) const = 0;
  virtual bool built(const torch::optim::Optimizer& opt) const = 0;
  virtual const std::vector<StateField>& fields() const = 0;
  // `state` by field, or nullopt when it is not this optimizer's state type.
  virtual std::optional<ParamState> read(torch::optim::OptimizerParamState& state) const = 0;
  virtual std::unique_ptr<torch::optim::OptimizerParamState> make_state(const ParamState& state) const = 0;
};

template <class Spec>
class EntryOf final : public Entry {
  using Options = typename Spec::Options;
  using State = typename Spec::State;

 public:
  std::string name() const override { return Spec::kName; }
  std::vector<std::string> keys() const override { return Spec::keys(); }
  std::shared_ptr<const torch::optim::OptimizerOptions> parse(YamlReader& r) const override {
    return std::make_shared<Options>(Spec::parse(r));
  }
  // Group 0: the decay options; group 1 (if any parameters): the no-decay options.
  std::unique_ptr<torch::optim::Optimizer> build(const torch::optim::OptimizerOptions& options, double lr,
                                                 const std::vector<torch::Tensor>& decay,
                                                 const std::vector<torch::Tensor>& no_decay) const override {
    Options o = dynamic_cast<const Options&>(options);
    Spec::set_lr(o, lr);
    Options exempt = o;
    Spec::exempt(exempt);
    Groups groups;
    if (!decay.empty()) groups.emplace_back(decay, std::make_unique<Options>(o));
    if (!no_decay.empty()) groups.emplace_back(no_decay, std::make_unique<Options>(exempt));
    return Spec::build(groups, o);
  }
  void set_lr(torch::optim::OptimizerOptions& options, double lr) const override {
    Spec::set_lr(dynamic_cast<Options&>(options), lr);
  }
  bool built(const torch::optim::Optimizer& opt) const override {
    return dynamic_cast<const typename Spec::Optimizer*>(&opt) != nullptr;
  }
  const std::vector<StateField>& fields() const override {
    static const std::vector<StateField> list = [] {
      State s;
      std::vector<StateField> out;
      for (const auto& f : Spec::fields(s)) out.push_back({f.name, f.kind});
      return out;
    }();
    return list;
  }
  std::optional<ParamState> read(torch::optim::OptimizerParamState& state) const override {
    auto* s = dynamic_cast<State*>(&state);
    if (s == nullptr) return std::nullopt;
    ParamState out;
    for (const auto& f : Spec::fields(*s))
      if (f.tensor->defined()) out.fields.emplace(f.name, *f.tensor);
    out.step = static_cast<int64_t>(s->step());
    return out;
  }
  std::unique_ptr<torch::optim::OptimizerParamState> make_state(const ParamState& state) const override {
    auto s = std::make_unique<State>();
    const auto refs = Spec::fields(*s);
    for (const auto& [field, t] : state.fields) {
      auto it = std::find_if(refs.begin(), refs.end(), [&](const FieldRef& f) { return field == f.name; });
      if (it == refs.end()) throw std::invalid_argument(name() + " optimizer state has no field '" + field + "'");
      *it->tensor = t;
    }
    s->step(static_cast<std::decay_t<decltype(s->step())>>(state.step));
    return s;
  }
};

// The optimizers, in the order of optimizer_names(). The one list of them.
const std::vector<std::unique_ptr<Entry>>& table() {
  static const std::vector<std::unique_ptr<Entry>> entries = [] {
    std::vector<std::unique_ptr<Entry>> t;
    t.push_back(std::make_unique<EntryOf<AdamWSpec>>());
    t.push_back(std::make_unique<EntryOf<CAMESpec>>());
    t.push_back(std::make_unique<EntryOf<LAMBSpec>>());
    t.push_back(std::make_unique<EntryOf<AdafactorSpec>>());
    return t;
  }();
  return entries;
}

const Entry* find_entry(const std::string& name) {
  for (const auto& e : table())
    if (e->name() == name) return e.get();
  return nullptr;
}

const Entry* find_entry(const torch::optim::Optimizer& opt) {
  for (const auto& e : table())
    if (e->built(opt)) return e.get();
  return nullptr;
}

const Entry& entry_of(const torch::optim::Optimizer& opt) {
  if (const Entry* e = find_entry(opt)) return *e;
  throw std::invalid_argument("unsupported optimizer type (the registry's are " + optimizer_name_list() + ")");
}

// `state` by field, whichever registry optimizer it belongs to; nullopt for another type.
std::optional<ParamState> read_any(torch::optim::OptimizerParamState& state) {
  for (const auto& e : table())
    if (auto s = e->read(state)) return s;
  return std::nullopt;
}

// ---- parameter groups ---------------------------------------------------------------------------------

struct Split {
  std::vector<torch::Tensor> decay;     // dim >= 2 and not matched by no_decay
  std::vector<torch::Tensor> no_decay;  // dim < 2 or matched by a no_decay pattern
};

Split split_params(const NamedParams& named_params, const OptimizerConfig& config) {
  const auto& patterns = config.no_decay;
  std::vector<bool> used(patterns.size(), false);
  std::unordered_set<const c10::TensorImpl*> seen;  // a tensor listed twice (tied weights) is updated once
  Split out;
  for (const auto& [name, tensor] : named_params) {
    if (!seen.insert(tensor.unsafeGetTensorImpl()).second) continue;
    bool excluded = tensor.dim() < 2;
    for (size_t k = 0; k < patterns.size(); ++k) {
      if (name.find(patterns[k].pattern) != std::string::npos) {
        excluded = true;
        used[k] = true;
      }
    }
    (excluded ? out.no_decay : out.decay).push_back(tensor);
  }
  for (size_t k = 0; k < patterns.size(); ++k) {
    if (!used[k])
      throw ConfigError(patterns[k].where, "optimizers." + config.name + ".no_decay",
                        "pattern '" + patterns[k].pattern + "' matches no parameter name");
  }
  return out;
}

void check_lr(double lr, const std::string& where) {
  if (!std::isfinite(lr) || lr < 0)
    throw ConfigError(where, "lr", "the learning rate must be a finite number >= 0, got " + std::to_string(lr));
}

const Entry& known_entry(const std::string& name, const std::string& where) {
  if (const Entry* e = find_entry(name)) return *e;
  throw ConfigError(where, "optimizer", "unknown optimizer '" + name + "'; valid names: " + optimizer_name_list());
}

}  // namespace

// ---- names --------------------------------------------------------------------------------------------

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& e : table()) out.push_back(e->name());
    return out;
  }();
  return names;
}

bool is_optimizer_name(const std::string& name) { return find_entry(name) != nullptr; }

std::string optimizer_name_list() { return join_names(optimizer_names()); }

// ---- options ------------------------------------------------------------------------------------------

OptimizerConfig parse_optimizer_config(const std::string& name, const YAML::Node& options, const std::string& where) {
  const Entry& entry = known_entry(name, where);
  YamlReader r(options, where, "optimizers." + name);
  r.check_keys(entry.keys());
  OptimizerConfig c;
  c.name = name;
  c.where = where;
  c.options = entry.parse(r);
  c.no_decay = no_decay_patterns(r);
  return c;
}

OptimizerConfigs::OptimizerConfigs(const YAML::Node& section, const std::string& where) : where_(where) {
  if (!section.IsDefined() || section.IsNull()) return;
  if (!section.IsMap())
    throw ConfigError(yaml_where(where, section), "optimizers", "expected a map of optimizer name -> options");
  for (const auto& kv : section) {
    const std::string name = kv.first.as<std::string>();
    if (!is_optimizer_name(name))
      throw ConfigError(yaml_where(where, kv.first), "optimizers." + name,
                        "unknown optimizer (valid: " + optimizer_name_list() + ")");
    listed_[name] = parse_optimizer_config(name, kv.second, where);
  }
}

OptimizerConfig OptimizerConfigs::get(const std::string& name) const {
  auto it = listed_.find(name);
  return it != listed_.end() ? it->second : parse_optimizer_config(name, YAML::Node(), where_);
}

// ---- building -----------------------------------------------------------------------------------------

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& config, const NamedParams& named_params,
                                                        double lr) {
  const Entry& entry = known_entry(config.name, config.where);
  if (!config.options) {
    throw std::invalid_argument("make_optimizer: the OptimizerConfig has no options (parse_optimizer_config makes one)");
  }
  check_lr(lr, config.where);
  const Split split = split_params(named_params, config);
  try {
    return entry.build(*config.options, lr, split.decay, split.no_decay);
  } catch (const c10::Error& e) {  // a check inside an optimizer that the YAML checks did not anticipate
    throw ConfigError(config.where, "optimizers." + config.name, e.what_without_backtrace());
  }
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name, const NamedParams& named_params,
                                                        double lr, const YAML::Node& options, const std::string& where) {
  known_entry(name, where);
  check_lr(lr, where);
  return make_optimizer(parse_optimizer_config(name, options, where), named_params, lr);
}

int64_t state_bytes(const torch::optim::Optimizer& opt) {
  int64_t total = 0;
  for (const auto& item : opt.state()) {
    const auto state = read_any(*item.second);
    if (!state) throw std::invalid_argument("state_bytes: unsupported optimizer state type");
    for (const auto& [field, t] : state->fields) total += detail::tensor_bytes(t);
  }
  return total;
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  if (!std::isfinite(lr) || lr < 0)
    throw std::invalid_argument("set_learning_rate: lr must be a finite number >= 0, got " + std::to_string(lr));
  const Entry* entry = find_entry(opt);  // nullptr: not one of ours, every group takes the lr
  for (auto& group : opt.param_groups()) {
    if (entry != nullptr)
      entry->set_lr(group.options(), lr);
    else
      group.options().set_lr(lr);
  }
}

void clear_grads(torch::optim::Optimizer& opt) {
  for (auto& group : opt.param_groups())
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
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
      const auto state = read_any(*it->second);
      if (!state) continue;
      const auto m = state->fields.find("exp_avg");
      if (m != state->fields.end() && m->second.sizes() != p.sizes()) {
        std::ostringstream msg;
        msg << "cannot load optimizer state: a state of shape " << m->second.sizes()
            << " belongs to a parameter of shape " << p.sizes();
        throw InputError(msg.str());
      }
    }
  }
}

// ---- state by field -----------------------------------------------------------------------------------

const std::vector<StateField>& state_fields(const std::string& name) {
  if (const Entry* e = find_entry(name)) return e->fields();
  throw std::invalid_argument("unknown optimizer '" + name + "' (valid: " + optimizer_name_list() + ")");
}

std::string optimizer_name(const torch::optim::Optimizer& opt) { return entry_of(opt).name(); }

std::optional<ParamState> read_param_state(const torch::optim::Optimizer& opt, const torch::Tensor& p) {
  const Entry& entry = entry_of(opt);
  auto it = opt.state().find(detail::state_key(p));
  if (it == opt.state().end()) return std::nullopt;
  auto state = entry.read(*it->second);
  if (!state) throw std::invalid_argument(entry.name() + " optimizer holds a parameter state of another type");
  return state;
}

void write_param_state(torch::optim::Optimizer& opt, const torch::Tensor& p, const ParamState& state) {
  opt.state()[detail::state_key(p)] = entry_of(opt).make_state(state);
}

}  // namespace vcycle::optim
