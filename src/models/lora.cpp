// LoRA adapters: the wrapper layer, injection by name pattern, merging, adapter files; see
// include/vcycle/models/lora.h.
#include "vcycle/models/lora.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include "vcycle/core/checkpoint.h"
#include "vcycle/core/errors.h"

namespace vcycle::lora {

using json = nlohmann::json;

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

// Glob -> regex: `**` any run of characters, `*` any run without a dot, everything else literal.
// The pattern may match a dot-aligned suffix of the name, hence the optional `(.*\.)?` prefix.
std::regex glob_regex(const std::string& glob) {
  std::string re = "(.*\\.)?";
  for (size_t i = 0; i < glob.size(); ++i) {
    const char c = glob[i];
    if (c == '*') {
      const bool doubled = i + 1 < glob.size() && glob[i + 1] == '*';
      re += doubled ? ".*" : "[^.]*";
      if (doubled) ++i;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      re += c;
    } else {
      re += '\\';
      re += c;
    }
  }
  return std::regex(re, std::regex::ECMAScript);
}

std::regex pattern_regex(const std::string& pattern) {
  try {
    if (pattern.rfind("re:", 0) == 0) return std::regex(pattern.substr(3), std::regex::ECMAScript);
    return glob_regex(pattern);
  } catch (const std::regex_error& e) {
    throw InputError("LoRA target '" + pattern + "' is not a valid regular expression (" + e.what() + ")");
  }
}

// Splits "a.b.c" into parent path "a.b" and child name "c".
std::pair<std::string, std::string> split_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

// The Linear layers of `module` by dotted name, in named_modules() order.
std::vector<std::pair<std::string, std::shared_ptr<torch::nn::LinearImpl>>> linear_layers(torch::nn::Module& module) {
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::LinearImpl>>> out;
  for (const auto& item : module.named_modules("", /*include_self=*/false)) {
    if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(item.value())) out.emplace_back(item.key(), linear);
  }
  return out;
}

// Wraps the Linear layers `names` (exact dotted names) and freezes everything else.
void wrap_layers(torch::nn::Module& module, const std::vector<std::string>& names, const LoRAOptions& options) {
  auto modules = module.named_modules("", /*include_self=*/false);
  for (const auto& name : names) {
    auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(modules[name]);
    TORCH_INTERNAL_ASSERT(linear, "wrap_layers: '", name, "' is not a Linear");
    const int64_t out = linear->weight.size(0), in = linear->weight.size(1);
    if (options.r() < 1 || options.r() > std::min(in, out)) {
      throw InputError("LoRA rank r=" + std::to_string(options.r()) + " is out of range for layer '" + name +
                       "' with weight " + shape_str(linear->weight) + " (need 1 <= r <= " +
                       std::to_string(std::min(in, out)) + ")");
    }
    const auto [parent_name, child] = split_name(name);
    torch::nn::Module& parent = parent_name.empty() ? module : *modules[parent_name];
    parent.replace_module(child, LoRALinear(torch::nn::Linear(linear), options));
  }
  // Freeze after wrapping: only A and B of the new layers train.
  for (auto& p : module.parameters()) p.requires_grad_(false);
  for (auto& [name, layer] : lora_layers(module)) {
    layer->lora_A.requires_grad_(true);
    layer->lora_B.requires_grad_(true);
  }
}

}  // namespace

// ---------------------------------------------------------------------------- the layer
LoRALinearImpl::LoRALinearImpl(torch::nn::Linear base_, const LoRAOptions& options) : base(std::move(base_)), options_(options) {
  TORCH_CHECK(base, "LoRALinear: the wrapped Linear is null");
  TORCH_CHECK(options_.r() >= 1, "LoRALinear: r must be >= 1, got ", options_.r());
  TORCH_CHECK(options_.alpha() > 0, "LoRALinear: alpha must be > 0, got ", options_.alpha());
  TORCH_CHECK(options_.dropout() >= 0 && options_.dropout() < 1, "LoRALinear: dropout must be in [0, 1), got ",
              options_.dropout());
  const auto& w = base->weight;
  TORCH_CHECK(options_.r() <= std::min(w.size(0), w.size(1)), "LoRALinear: r=", options_.r(),
              " exceeds min(out, in) of weight ", w.sizes());
  // The Linear's own tensors, not copies: one layer, whichever handle a caller holds.
  weight = register_parameter("weight", base->weight, /*requires_grad=*/false);
  if (base->bias.defined()) bias = register_parameter("bias", base->bias, /*requires_grad=*/false);
  const auto opts = w.options().requires_grad(false);
  lora_A = register_parameter("lora_A", torch::empty({options_.r(), w.size(1)}, opts));
  lora_B = register_parameter("lora_B", torch::zeros({w.size(0), options_.r()}, opts));
  torch::NoGradGuard no_grad;
  // A as a Linear's weight is initialised (Kaiming-uniform, a = √5), as in the paper's loralib; B = 0
  // makes the initial update exactly zero.
  torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));
}

torch::Tensor LoRALinearImpl::delta() const {
  return torch::matmul(lora_B, lora_A).mul_(scale());
}

torch::Tensor LoRALinearImpl::forward(const torch::Tensor& x) {
  ++forward_calls_;
  // The base path is exactly torch::nn::Linear's, so with B = 0 the output is bitwise the base's.
  auto y = torch::nn::functional::linear(x, weight, bias);
  if (merged_) return y;
  const auto h = options_.dropout() > 0 ? torch::dropout(x, options_.dropout(), is_training()) : x;
  // B·(A·x): two thin products, never the (out × in) update.
  return y + torch::nn::functional::linear(torch::nn::functional::linear(h, lora_A), lora_B).mul_(scale());
}

void LoRALinearImpl::merge() {
  TORCH_CHECK(!merged_, "LoRALinear::merge: already merged");
  torch::NoGradGuard no_grad;
  weight.add_(delta());
  merged_ = true;
}

void LoRALinearImpl::unmerge() {
  TORCH_CHECK(merged_, "LoRALinear::unmerge: not merged");
  torch::NoGradGuard no_grad;
  weight.sub_(delta());
  merged_ = false;
}

// ---------------------------------------------------------------------------- injection
bool pattern_matches(const std::string& pattern, const std::string& name) {
  return std::regex_match(name, pattern_regex(pattern));
}

std::vector<std::string> inject(torch::nn::Module& module, const std::vector<std::string>& patterns,
                                const LoRAOptions& options) {
  if (!lora_layers(module).empty()) throw InputError("LoRA: the module already holds LoRA layers; inject once");
  if (patterns.empty()) throw InputError("LoRA: no target patterns given");
  if (options.r() < 1) throw InputError("LoRA: r must be >= 1, got " + std::to_string(options.r()));
  if (!(options.alpha() > 0)) throw InputError("LoRA: alpha must be > 0, got " + std::to_string(options.alpha()));
  if (!(options.dropout() >= 0 && options.dropout() < 1)) {
    throw InputError("LoRA: dropout must be in [0, 1), got " + std::to_string(options.dropout()));
  }
  const auto linears = linear_layers(module);
  std::set<std::string> chosen;
  for (const auto& pattern : patterns) {
    const std::regex re = pattern_regex(pattern);
    bool any = false;
    for (const auto& [name, layer] : linears) {
      if (std::regex_match(name, re)) {
        chosen.insert(name);
        any = true;
      }
    }
    if (!any) {
      std::string valid;
      for (size_t i = 0; i < linears.size() && i < 12; ++i) valid += (i ? ", " : "") + linears[i].first;
      if (linears.size() > 12) valid += ", … (" + std::to_string(linears.size()) + " in all)";
      throw InputError("LoRA target '" + pattern + "' matches no torch::nn::Linear layer (the Linear layers are: " +
                       (valid.empty() ? std::string("none") : valid) + ")");
    }
  }
  std::vector<std::string> names;  // in module order, not pattern order
  for (const auto& [name, layer] : linears) {
    if (chosen.count(name)) names.push_back(name);
  }
  wrap_layers(module, names, options);
  return names;
}

torch::Tensor linear_forward(const torch::nn::Module& parent, const std::string& name, const torch::Tensor& x) {
  // named_children() copies a small map; a few per block is negligible next to the matmuls.
  const auto children = parent.named_children();
  const auto* child = children.find(name);
  TORCH_CHECK(child != nullptr, "linear_forward: ", parent.name(), " has no child '", name, "'");
  if (auto lora = std::dynamic_pointer_cast<LoRALinearImpl>(*child)) return lora->forward(x);
  const auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(*child);
  TORCH_CHECK(linear != nullptr, "linear_forward: child '", name, "' of ", parent.name(), " is ", (*child)->name(),
              ", not a Linear or LoRALinear");
  return linear->forward(x);
}

std::vector<std::pair<std::string, std::shared_ptr<LoRALinearImpl>>> lora_layers(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, std::shared_ptr<LoRALinearImpl>>> out;
  for (const auto& item : module.named_modules("", /*include_self=*/false)) {
    if (auto layer = std::dynamic_pointer_cast<LoRALinearImpl>(item.value())) out.emplace_back(item.key(), layer);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> adapter_parameters(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, layer] : lora_layers(module)) {
    out.emplace_back(name + ".lora_A", layer->lora_A);
    out.emplace_back(name + ".lora_B", layer->lora_B);
  }
  return out;
}

void require_routed(const torch::nn::Module& module) {
  std::string missed;
  for (const auto& [name, layer] : lora_layers(module)) {
    if (layer->forward_calls() == 0) missed += (missed.empty() ? "" : ", ") + name;
  }
  if (!missed.empty()) {
    throw RunError("LoRA layers never called by the model's forward: " + missed +
                   " — their parent calls the old Linear through a member holder; call "
                   "vcycle::lora::linear_forward(*this, \"<name>\", x) instead (see vcycle/lora.h)");
  }
}

void merge(torch::nn::Module& module) {
  for (auto& [name, layer] : lora_layers(module)) {
    if (!layer->merged()) layer->merge();
  }
}

void unmerge(torch::nn::Module& module) {
  for (auto& [name, layer] : lora_layers(module)) {
    if (layer->merged()) layer->unmerge();
  }
}

// ---------------------------------------------------------------------------- adapter files
void save_adapters(const torch::nn::Module& module, const std::string& path) {
  const auto layers = lora_layers(module);
  TORCH_CHECK(!layers.empty(), "save_adapters: the module has no LoRA layers");
  Checkpoint ckpt;
  json names = json::array();
  for (const auto& [name, layer] : layers) {
    names.push_back(name);
    ckpt.tensors[name + ".lora_A"] = layer->lora_A.detach().to(torch::kCPU);
    ckpt.tensors[name + ".lora_B"] = layer->lora_B.detach().to(torch::kCPU);
  }
  const LoRAOptions& o = layers.front().second->options();
  ckpt.meta_json = json{{"format", kAdapterFormat}, {"version", kAdapterVersion}, {"r", o.r()},
                        {"alpha", o.alpha()},       {"dropout", o.dropout()},      {"layers", names}}
                       .dump();
  save_checkpoint(path, ckpt);
}

AdapterFile read_adapters(const std::string& path) {
  Checkpoint ckpt = load_checkpoint(path);
  AdapterFile file;
  try {
    const json meta = json::parse(ckpt.meta_json);
    if (meta.value("format", std::string()) != kAdapterFormat) {
      throw InputError(path + ": not a LoRA adapter file (format '" + meta.value("format", std::string()) +
                       "', expected '" + kAdapterFormat + "')");
    }
    if (meta.at("version").get<int>() != kAdapterVersion) {
      throw InputError(path + ": adapter file version " + std::to_string(meta.at("version").get<int>()) +
                       ", this build reads version " + std::to_string(kAdapterVersion));
    }
    file.options.r(meta.at("r").get<int64_t>()).alpha(meta.at("alpha").get<double>()).dropout(meta.at("dropout").get<double>());
    file.layers = meta.at("layers").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    throw InputError(path + ": adapter metadata is malformed (" + e.what() + ")");
  }
  for (const auto& name : file.layers) {
    for (const char* part : {".lora_A", ".lora_B"}) {
      auto it = ckpt.tensors.find(name + part);
      if (it == ckpt.tensors.end()) throw InputError(path + ": missing tensor '" + name + part + "'");
      file.tensors.emplace_back(it->first, it->second);
    }
  }
  if (file.tensors.size() != ckpt.tensors.size()) {
    throw InputError(path + ": holds tensors of layers not listed in its metadata");
  }
  return file;
}

std::vector<std::string> load_adapters(torch::nn::Module& module, const std::string& path) {
  const AdapterFile file = read_adapters(path);
  if (lora_layers(module).empty()) {
    // Exact names, so the file's layers (and only they) are wrapped.
    const auto linears = linear_layers(module);
    for (const auto& name : file.layers) {
      bool found = false;
      for (const auto& item : linears) found = found || item.first == name;
      if (!found) throw InputError(path + ": layer '" + name + "' is not a torch::nn::Linear of this model");
    }
    wrap_layers(module, file.layers, file.options);
  }
  const auto layers = lora_layers(module);
  std::set<std::string> in_file(file.layers.begin(), file.layers.end());
  for (const auto& [name, layer] : layers) {
    if (!in_file.count(name)) throw InputError(path + ": has no adapters for the model's LoRA layer '" + name + "'");
    if (layer->options().alpha() / layer->options().r() != file.options.alpha() / file.options.r()) {
      throw InputError(path + ": adapters were trained with alpha/r = " + std::to_string(file.options.alpha()) + "/" +
                       std::to_string(file.options.r()) + ", the model's layer '" + name + "' uses " +
                       std::to_string(layer->options().alpha()) + "/" + std::to_string(layer->options().r()));
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [tensor_name, value] : file.tensors) {
    const auto [layer_name, part] = split_name(tensor_name);
    std::shared_ptr<LoRALinearImpl> layer;
    for (const auto& item : layers) {
      if (item.first == layer_name) layer = item.second;
    }
    if (!layer) throw InputError(path + ": tensor '" + tensor_name + "' names no LoRA layer of this model");
    torch::Tensor& target = part == "lora_A" ? layer->lora_A : layer->lora_B;
    if (value.sizes() != target.sizes()) {
      throw InputError(path + ": tensor '" + tensor_name + "' has shape " + shape_str(value) + ", the model expects " +
                       shape_str(target));
    }
    // A merged layer holds W + ΔW: take the old update out before replacing A and B.
    const bool was_merged = layer->merged();
    if (was_merged) layer->unmerge();
    target.copy_(value);
    if (was_merged) layer->merge();
  }
  return file.layers;
}

}  // namespace vcycle::lora
