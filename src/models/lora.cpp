// LoRA adapters: the wrapper layer, injection by name pattern, merging, adapter files; see
// include/vcycle/models/lora.h.
#include "vcycle/models/lora.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
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

// The slices `names` of layer `layer` (dotted name) with `rows` rows, from its fused layout.
// InputError naming the target when the layer has no layout, a name is not in it, or the rows do
// not split evenly.
std::vector<SliceSpec> layout_slices(const std::string& target, const std::string& layer, int64_t rows,
                                     const std::set<std::string>& names, const FusedLayouts& layouts) {
  const std::string child = split_name(layer).second;
  const auto it = layouts.find(child);
  if (it == layouts.end()) {
    std::string known;
    for (const auto& [name, parts] : layouts) {
      std::string list;
      for (const auto& part : parts) list += (list.empty() ? "" : ", ") + part;
      known += (known.empty() ? "" : "; ") + name + " = " + list;
    }
    throw InputError("LoRA target '" + target + "' names slices of layer '" + layer +
                     "', which is not a fused layer (fused layouts: " + (known.empty() ? std::string("none") : known) + ")");
  }
  const auto& parts = it->second;
  std::string valid;
  for (const auto& part : parts) valid += (valid.empty() ? "" : ", ") + part;
  for (const auto& name : names) {
    if (std::find(parts.begin(), parts.end(), name) == parts.end()) {
      throw InputError("LoRA target '" + target + "': layer '" + layer + "' has no slice '" + name + "' (its slices: " +
                       valid + ")");
    }
  }
  const int64_t n = static_cast<int64_t>(parts.size());
  if (rows % n != 0) {
    throw InputError("LoRA target '" + target + "': layer '" + layer + "' has " + std::to_string(rows) +
                     " rows, not divisible into its " + std::to_string(n) + " slices " + valid);
  }
  std::vector<SliceSpec> out;
  for (int64_t i = 0; i < n; ++i) {
    if (names.count(parts[i])) out.push_back(SliceSpec{parts[i], i * (rows / n), rows / n});
  }
  return out;
}

// Wraps the Linear layers `names` (exact dotted names; `slices` by name for the sliced ones) and
// freezes everything else.
void wrap_layers(torch::nn::Module& module, const std::vector<std::string>& names,
                 const std::map<std::string, std::vector<SliceSpec>>& slices, const LoRAOptions& options) {
  auto modules = module.named_modules("", /*include_self=*/false);
  for (const auto& name : names) {
    auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(modules[name]);
    TORCH_INTERNAL_ASSERT(linear, "wrap_layers: '", name, "' is not a Linear");
    const auto it = slices.find(name);
    const std::vector<SliceSpec> specs = it == slices.end() ? std::vector<SliceSpec>{} : it->second;
    const int64_t in = linear->weight.size(1);
    std::vector<std::pair<std::string, int64_t>> blocks;  // (what, rows) to check r against
    if (specs.empty()) blocks.emplace_back("", linear->weight.size(0));
    for (const auto& spec : specs) {
      if (spec.rows < 1 || spec.start < 0 || spec.start + spec.rows > linear->weight.size(0)) {
        throw InputError("LoRA slice '" + spec.name + "' of layer '" + name + "' (rows " + std::to_string(spec.start) +
                         " + " + std::to_string(spec.rows) + ") is outside its weight " + shape_str(linear->weight));
      }
      blocks.emplace_back(spec.name, spec.rows);
    }
    for (const auto& [what, rows] : blocks) {
      if (options.r() < 1 || options.r() > std::min(in, rows)) {
        throw InputError("LoRA rank r=" + std::to_string(options.r()) + " is out of range for layer '" + name + "'" +
                         (what.empty() ? "" : " slice '" + what + "' (" + std::to_string(rows) + " rows)") +
                         " with weight " + shape_str(linear->weight) + " (need 1 <= r <= " +
                         std::to_string(std::min(in, rows)) + ")");
      }
    }
  }
  for (const auto& name : names) {
    auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(modules[name]);
    const auto it = slices.find(name);
    const auto [parent_name, child] = split_name(name);
    torch::nn::Module& parent = parent_name.empty() ? module : *modules[parent_name];
    parent.replace_module(child, LoRALinear(torch::nn::Linear(linear), options,
                                            it == slices.end() ? std::vector<SliceSpec>{} : it->second));
  }
  // Freeze after wrapping: only A and B of the new layers train.
  for (auto& p : module.parameters()) p.requires_grad_(false);
  for (auto& [name, layer] : lora_layers(module)) {
    for (auto& [pname, p] : layer->adapter_parameters()) p.requires_grad_(true);
  }
}

// "attn.qkv[q,v]" -> ("attn.qkv", {q, v}); a pattern without a bracketed suffix (or a regex) -> (it, {}).
std::pair<std::string, std::set<std::string>> split_target(const std::string& target) {
  if (target.rfind("re:", 0) == 0 || target.empty() || target.back() != ']') return {target, {}};
  const auto open = target.rfind('[');
  if (open == std::string::npos || open == 0) throw InputError("LoRA target '" + target + "': unbalanced ']'");
  std::set<std::string> names;
  std::string name;
  const std::string list = target.substr(open + 1, target.size() - open - 2) + ",";
  for (const char c : list) {
    if (c == ',') {
      if (name.empty()) throw InputError("LoRA target '" + target + "': empty slice name in [" + list.substr(0, list.size() - 1) + "]");
      if (!names.insert(name).second) throw InputError("LoRA target '" + target + "': slice '" + name + "' named twice");
      name.clear();
    } else if (!std::isspace(static_cast<unsigned char>(c))) {
      name += c;
    }
  }
  return {target.substr(0, open), names};
}

}  // namespace

// ---------------------------------------------------------------------------- the layer
const FusedLayouts& default_fused_layouts() {
  static const FusedLayouts layouts{{"qkv", {"q", "k", "v"}}};
  return layouts;
}

LoRALinearImpl::LoRALinearImpl(torch::nn::Linear base_, const LoRAOptions& options, std::vector<SliceSpec> specs)
    : base(std::move(base_)), options_(options) {
  TORCH_CHECK(base, "LoRALinear: the wrapped Linear is null");
  TORCH_CHECK(options_.r() >= 1, "LoRALinear: r must be >= 1, got ", options_.r());
  TORCH_CHECK(options_.alpha() > 0, "LoRALinear: alpha must be > 0, got ", options_.alpha());
  TORCH_CHECK(options_.dropout() >= 0 && options_.dropout() < 1, "LoRALinear: dropout must be in [0, 1), got ",
              options_.dropout());
  const auto& w = base->weight;
  const bool whole = specs.empty();
  if (whole) specs.push_back(SliceSpec{"", 0, w.size(0)});
  int64_t next = 0;
  for (const auto& spec : specs) {
    TORCH_CHECK(whole || !spec.name.empty(), "LoRALinear: a slice needs a name");
    TORCH_CHECK(spec.start >= next && spec.rows >= 1 && spec.start + spec.rows <= w.size(0), "LoRALinear: slice '",
                spec.name, "' (rows ", spec.start, " + ", spec.rows, ") overlaps another or lies outside weight ", w.sizes());
    TORCH_CHECK(options_.r() <= std::min(spec.rows, w.size(1)), "LoRALinear: r=", options_.r(), " exceeds min(rows, in) of ",
                spec.name.empty() ? std::string("weight") : "slice '" + spec.name + "' of weight", " ", w.sizes());
    next = spec.start + spec.rows;
  }
  // The Linear's own tensors, not copies: one layer, whichever handle a caller holds.
  weight = register_parameter("weight", base->weight, /*requires_grad=*/false);
  if (base->bias.defined()) bias = register_parameter("bias", base->bias, /*requires_grad=*/false);
  const auto opts = w.options().requires_grad(false);
  torch::NoGradGuard no_grad;
  for (const auto& spec : specs) {
    const std::string suffix = spec.name.empty() ? "" : "_" + spec.name;
    LoRASlice slice{spec, register_parameter("lora_A" + suffix, torch::empty({options_.r(), w.size(1)}, opts)),
                    register_parameter("lora_B" + suffix, torch::zeros({spec.rows, options_.r()}, opts))};
    // A as a Linear's weight is initialised (Kaiming-uniform, a = √5), as in the paper's loralib; B = 0
    // makes the initial update exactly zero.
    torch::nn::init::kaiming_uniform_(slice.A, std::sqrt(5.0));
    slices_.push_back(std::move(slice));
  }
  if (whole) {
    lora_A = slices_.front().A;
    lora_B = slices_.front().B;
  }
}

std::vector<std::pair<std::string, torch::Tensor>> LoRALinearImpl::adapter_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& slice : slices_) {
    const std::string suffix = slice.spec.name.empty() ? "" : "_" + slice.spec.name;
    out.emplace_back("lora_A" + suffix, slice.A);
    out.emplace_back("lora_B" + suffix, slice.B);
  }
  return out;
}

torch::Tensor LoRALinearImpl::forward(const torch::Tensor& x) {
  ++forward_calls_;
  // The base path is exactly linear_forward's for a plain Linear, so with B = 0 the output is
  // bitwise the base's.
  auto y = torch::linear(x, weight, bias);
  if (merged_) return y;
  const auto h = options_.dropout() > 0 ? torch::dropout(x, options_.dropout(), is_training()) : x;
  // B·(A·x): two thin products, never the (out × in) update.
  const auto update = [&](const LoRASlice& s) {
    return torch::nn::functional::linear(torch::nn::functional::linear(h, s.A), s.B).mul_(scale());
  };
  if (!sliced()) return y + update(slices_.front());
  // Each slice's update on its rows, zeros between them (adding +0 leaves those outputs as they are).
  std::vector<torch::Tensor> pieces;
  const auto zeros = [&](int64_t n) {
    auto sizes = y.sizes().vec();
    sizes.back() = n;
    return torch::zeros(sizes, y.options());
  };
  int64_t row = 0;
  for (const auto& s : slices_) {
    if (s.spec.start > row) pieces.push_back(zeros(s.spec.start - row));
    pieces.push_back(update(s));
    row = s.spec.start + s.spec.rows;
  }
  if (row < y.size(-1)) pieces.push_back(zeros(y.size(-1) - row));
  return y + torch::cat(pieces, -1);
}

void LoRALinearImpl::merge() {
  TORCH_CHECK(!merged_, "LoRALinear::merge: already merged");
  torch::NoGradGuard no_grad;
  // W[rows] += (α/r)·B·A, slice by slice: rows outside every slice are not touched.
  for (const auto& s : slices_) weight.narrow(0, s.spec.start, s.spec.rows).add_(torch::matmul(s.B, s.A).mul_(scale()));
  merged_ = true;
}

void LoRALinearImpl::unmerge() {
  TORCH_CHECK(merged_, "LoRALinear::unmerge: not merged");
  torch::NoGradGuard no_grad;
  for (const auto& s : slices_) weight.narrow(0, s.spec.start, s.spec.rows).sub_(torch::matmul(s.B, s.A).mul_(scale()));
  merged_ = false;
}

// ---------------------------------------------------------------------------- injection
bool pattern_matches(const std::string& pattern, const std::string& name) {
  return std::regex_match(name, pattern_regex(pattern));
}

std::vector<std::string> inject(torch::nn::Module& module, const std::vector<std::string>& patterns,
                                const LoRAOptions& options, const FusedLayouts& layouts) {
  if (!lora_layers(module).empty()) throw InputError("LoRA: the module already holds LoRA layers; inject once");
  if (patterns.empty()) throw InputError("LoRA: no target patterns given");
  if (options.r() < 1) throw InputError("LoRA: r must be >= 1, got " + std::to_string(options.r()));
  if (!(options.alpha() > 0)) throw InputError("LoRA: alpha must be > 0, got " + std::to_string(options.alpha()));
  if (!(options.dropout() >= 0 && options.dropout() < 1)) {
    throw InputError("LoRA: dropout must be in [0, 1), got " + std::to_string(options.dropout()));
  }
  const auto linears = linear_layers(module);
  // Per chosen layer: the slice names asked for (empty: the whole layer) and the first pattern that
  // chose it, so that a layer asked for whole and in slices is an error naming both.
  struct Choice {
    std::set<std::string> slices;
    std::string pattern;
  };
  std::map<std::string, Choice> chosen;
  for (const auto& target : patterns) {
    const auto [pattern, slice_names] = split_target(target);
    const std::regex re = pattern_regex(pattern);
    bool any = false;
    for (const auto& [name, layer] : linears) {
      if (!std::regex_match(name, re)) continue;
      any = true;
      auto [it, fresh] = chosen.emplace(name, Choice{slice_names, target});
      if (fresh) continue;
      if (it->second.slices.empty() != slice_names.empty()) {
        throw InputError("LoRA targets '" + it->second.pattern + "' and '" + target + "' ask for layer '" + name +
                         "' both whole and in slices; choose one");
      }
      it->second.slices.insert(slice_names.begin(), slice_names.end());
    }
    if (!any) {
      std::string valid;
      for (size_t i = 0; i < linears.size() && i < 12; ++i) valid += (i ? ", " : "") + linears[i].first;
      if (linears.size() > 12) valid += ", … (" + std::to_string(linears.size()) + " in all)";
      throw InputError("LoRA target '" + target + "' matches no torch::nn::Linear layer (the Linear layers are: " +
                       (valid.empty() ? std::string("none") : valid) + ")");
    }
  }
  std::vector<std::string> names;  // in module order, not pattern order
  std::map<std::string, std::vector<SliceSpec>> slices;
  for (const auto& [name, layer] : linears) {
    const auto it = chosen.find(name);
    if (it == chosen.end()) continue;
    names.push_back(name);
    if (!it->second.slices.empty()) {
      slices[name] = layout_slices(it->second.pattern, name, layer->weight.size(0), it->second.slices, layouts);
    }
  }
  wrap_layers(module, names, slices, options);
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
  // at::linear, not LinearImpl::forward: the C++ frontend's functional linear multiplies inputs of
  // 3+ dims with matmul and adds the bias in a separate pass, and under bf16 autocast it adds the
  // fp32 bias to the bf16 product, converting the product to fp32 and back. at::linear (what
  // PyTorch's nn.Linear calls) folds the leading dims and puts the bias into the GEMM's output.
  return torch::linear(x, linear->weight, linear->bias);
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
    for (const auto& [pname, p] : layer->adapter_parameters()) out.emplace_back(name + "." + pname, p);
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
  json slices = json::object();
  for (const auto& [name, layer] : layers) {
    names.push_back(name);
    for (const auto& [pname, p] : layer->adapter_parameters()) ckpt.tensors[name + "." + pname] = p.detach().to(torch::kCPU);
    if (!layer->sliced()) continue;
    json list = json::array();
    for (const auto& s : layer->slices()) list.push_back({{"name", s.spec.name}, {"start", s.spec.start}, {"rows", s.spec.rows}});
    slices[name] = list;
  }
  const LoRAOptions& o = layers.front().second->options();
  json meta{{"format", kAdapterFormat}, {"version", kAdapterVersion}, {"r", o.r()},
            {"alpha", o.alpha()},       {"dropout", o.dropout()},      {"layers", names}};
  if (!slices.empty()) meta["slices"] = slices;
  ckpt.meta_json = meta.dump();
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
    if (meta.contains("slices")) {
      for (const auto& [layer, list] : meta.at("slices").items()) {
        for (const auto& s : list) {
          file.slices[layer].push_back(
              SliceSpec{s.at("name").get<std::string>(), s.at("start").get<int64_t>(), s.at("rows").get<int64_t>()});
        }
      }
    }
  } catch (const json::exception& e) {
    throw InputError(path + ": adapter metadata is malformed (" + e.what() + ")");
  }
  for (const auto& name : file.layers) {
    std::vector<std::string> parts;
    const auto sliced = file.slices.find(name);
    if (sliced == file.slices.end()) parts = {".lora_A", ".lora_B"};
    for (const auto& s : sliced == file.slices.end() ? std::vector<SliceSpec>{} : sliced->second) {
      parts.push_back(".lora_A_" + s.name);
      parts.push_back(".lora_B_" + s.name);
    }
    for (const auto& part : parts) {
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
    wrap_layers(module, file.layers, file.slices, file.options);
  }
  const auto layers = lora_layers(module);
  std::set<std::string> in_file(file.layers.begin(), file.layers.end());
  for (const auto& [name, layer] : layers) {
    if (!in_file.count(name)) throw InputError(path + ": has no adapters for the model's LoRA layer '" + name + "'");
    std::string model_slices, file_slices;
    for (const auto& sl : layer->slices()) model_slices += (model_slices.empty() ? "" : ",") + sl.spec.name;
    const auto sliced = file.slices.find(name);
    if (sliced != file.slices.end()) {
      for (const auto& sl : sliced->second) file_slices += (file_slices.empty() ? "" : ",") + sl.name;
    }
    if (model_slices != file_slices) {
      const auto show = [](const std::string& v) { return v.empty() ? std::string("whole") : "[" + v + "]"; };
      throw InputError(path + ": adapters of layer '" + name + "' are " + show(file_slices) + ", the model's are " +
                       show(model_slices));
    }
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
    torch::Tensor target;
    for (const auto& [pname, p] : layer->adapter_parameters()) {
      if (pname == part) target = p;
    }
    if (!target.defined()) {
      throw InputError(path + ": tensor '" + tensor_name + "' names no adapter of the model's LoRA layer '" + layer_name +
                       "' (its slices differ from the file's)");
    }
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
