// LoRA: low-rank adapters on the linear layers of any torch::nn::Module (Hu et al. 2021,
// "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685).
//
//   auto model = adapter.build(adapter.top_shape());            // or any module of your own
//   load_module_tensors(*model, trained, "base.ckpt");          // base weights first: names unchanged
//   auto wrapped = lora::inject(*model, {"attn.qkv", "mlp.*"}, lora::LoRAOptions().r(8).alpha(16));
//   optimizer over lora::adapter_parameters(*model);            // A and B only; everything else frozen
//   ... train ...
//   lora::save_adapters(*model, "adapters.lora");              // A and B only (KBs, not the model)
//   lora::merge(*model);                                         // W += (α/r)·B·A for inference
//
// A wrapped layer computes  y = W·x + b + (α/r)·B·A·dropout(x)  with W (out × in) and b frozen,
// A (r × in) Kaiming-uniform and B (out × r) zero, so at injection the model's output is unchanged
// bit for bit. Parameter names stay as they were (`blocks.0.attn.qkv.weight`) and gain
// `…qkv.lora_A` and `…qkv.lora_B`, so the base checkpoint still loads by name.
//
// Target patterns match the dotted names of torch::nn::Linear submodules (`named_modules()`):
//   - a glob: `*` matches one name component (no dots), `**` any run of components; the pattern
//     matches a name when it matches the whole name or a suffix that starts after a dot, so
//     `attn.qkv` matches `blocks.3.attn.qkv` and `mlp.*` matches `blocks.0.mlp.fc` and `…mlp.proj`;
//   - `re:<ECMAScript regex>`, matched against the whole dotted name (`re:blocks\.[01]\..*`);
//   - a glob followed by slice names in brackets, `attn.qkv[q,v]`: only those row blocks of a fused
//     weight get adapters, each its own A and B (the LoRA paper's W_q and W_v of a fused qkv). A
//     layer's slices come from its fused layout, by the layer's own name (FusedLayouts below; the
//     default knows `qkv` = rows q, k, v in equal thirds, the order of vcycle's attention). In a YAML
//     flow list quote it: `targets: ["attn.qkv[q,v]", mlp.fc]`.
// A pattern that matches no Linear layer is an error naming the pattern and the Linear layers there
// are; so is a slice the layer's layout does not have, and one layer targeted both whole and in slices.
//
// The one requirement on a model (LibTorch has no forward hooks): inject() swaps the *registered*
// child with replace_module(), but a parent that keeps its Linear in a member holder
// (`torch::nn::Linear qkv;  qkv->forward(x)`) still calls the old layer through that holder, and the
// adapter would be silently skipped. A parent's forward must therefore call an adaptable layer through
// its registered name:
//     return lora::linear_forward(*this, "qkv", x);   // instead of qkv->forward(x)
// which calls the LoRA wrapper when there is one and the plain Linear otherwise (bitwise the same
// result as qkv->forward(x)). vcycle's built-in models and examples/custom_model's LLaMA do this. To
// catch a model that does not, every wrapper counts its calls and require_routed() (which `vcycle
// finetune` runs after its first forward) names every wrapped layer that the forward never reached.
// An injected model cannot be clone()d (merge() and save_adapters() are the supported exits).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace vcycle::lora {

// Defaults: r = 8 and α = 2r, a common choice; the paper tunes α once and keeps it as r varies.
struct LoRAOptions {
  TORCH_ARG(int64_t, r) = 8;         // adapter rank; > 0 and <= min(in, out) of every wrapped layer
  TORCH_ARG(double, alpha) = 16.0;   // the update is scaled by alpha / r
  TORCH_ARG(double, dropout) = 0.0;  // dropout probability on the adapter's input (training mode only)
};

// The row blocks of fused Linear layers, by the layer's own name (the last component of its dotted
// name): `qkv` -> {q, k, v} means rows [0, n/3) are q, [n/3, 2n/3) k and the rest v.
using FusedLayouts = std::map<std::string, std::vector<std::string>>;
// {qkv: [q, k, v]}: vcycle's SelfAttention (attention.h).
const FusedLayouts& default_fused_layouts();

// Rows [start, start + rows) of a wrapped weight, adapted on their own.
struct SliceSpec {
  std::string name;   // e.g. "q"
  int64_t start = 0;  // first row of W
  int64_t rows = 0;   // row count
};

// One adapter: the whole weight (name "") or one slice of its rows.
struct LoRASlice {
  SliceSpec spec;  // name "", start 0, rows = out for a whole-layer adapter
  torch::Tensor A;  // (r × in), trainable, registered as `lora_A` or `lora_A_<name>`
  torch::Tensor B;  // (rows × r), trainable, zero at injection; `lora_B` or `lora_B_<name>`
};

// A frozen torch::nn::Linear plus trainable low-rank updates. Registers `weight` (and `bias`) — the
// very tensors of the wrapped Linear, so the two stay one layer — and `lora_A`, `lora_B` (the whole
// weight) or `lora_A_<slice>`, `lora_B_<slice>` per slice of its rows.
class LoRALinearImpl : public torch::nn::Module {
 public:
  // `slices` empty: one adapter on the whole weight; else one per slice (disjoint, in row order).
  LoRALinearImpl(torch::nn::Linear base, const LoRAOptions& options, std::vector<SliceSpec> slices = {});

  // W·x + b + (α/r)·B·A·dropout(x), per slice on its rows only; only W·x + b while merged.
  torch::Tensor forward(const torch::Tensor& x);
  void merge();    // W[rows] += (α/r)·B·A per adapter; forward then skips the adapter path
  void unmerge();  // W[rows] -= (α/r)·B·A

  bool merged() const { return merged_; }
  double scale() const { return options_.alpha() / static_cast<double>(options_.r()); }
  const LoRAOptions& options() const { return options_; }
  int64_t forward_calls() const { return forward_calls_; }  // see require_routed()

  torch::nn::Linear base;  // the wrapped layer (not registered: its tensors are registered here)
  torch::Tensor weight;    // W (out × in), frozen
  torch::Tensor bias;      // b (out), frozen; undefined when the Linear has none
  torch::Tensor lora_A;    // A (r × in) of a whole-layer adapter; undefined when sliced
  torch::Tensor lora_B;    // B (out × r) of a whole-layer adapter; undefined when sliced

  bool sliced() const { return !slices_.front().spec.name.empty(); }
  const std::vector<LoRASlice>& slices() const { return slices_; }
  // The adapter parameters by their registered names (`lora_A`, `lora_B_q`, ...), in slice order.
  std::vector<std::pair<std::string, torch::Tensor>> adapter_parameters() const;

 private:
  LoRAOptions options_;
  std::vector<LoRASlice> slices_;
  bool merged_ = false;
  int64_t forward_calls_ = 0;
};
TORCH_MODULE(LoRALinear);

// Wraps every torch::nn::Linear of `module` whose dotted name matches one of `patterns` (see the top
// of this file) and freezes every other parameter of `module`. Returns the wrapped names in
// named_modules() order. Throws InputError for a pattern matching no Linear, a bad regex, a rank out
// of range for a layer (naming it and its shape), or a module that already holds LoRA layers.
// `layouts` gives the slices a `[...]` target may name.
std::vector<std::string> inject(torch::nn::Module& module, const std::vector<std::string>& patterns,
                                const LoRAOptions& options, const FusedLayouts& layouts = default_fused_layouts());

// True when `pattern` (glob or `re:` regex, as above) matches the dotted module name `name`.
bool pattern_matches(const std::string& pattern, const std::string& name);

// The child `name` of `parent`, called as a linear layer: the LoRA wrapper when inject() replaced it,
// the plain Linear otherwise. Throws if `parent` has no such child or it is neither.
torch::Tensor linear_forward(const torch::nn::Module& parent, const std::string& name, const torch::Tensor& x);

// The LoRA layers of `module` by dotted name, in named_modules() order (empty when not injected).
std::vector<std::pair<std::string, std::shared_ptr<LoRALinearImpl>>> lora_layers(const torch::nn::Module& module);

// The adapter parameters (`….lora_A`, `….lora_B`, `….qkv.lora_A_q`, ...), by full dotted name: what
// the optimizer gets.
std::vector<std::pair<std::string, torch::Tensor>> adapter_parameters(const torch::nn::Module& module);

// Throws RunError naming every LoRA layer of `module` whose forward has not been called yet — the
// sign of a parent that calls a member holder instead of linear_forward(). Call after one forward.
void require_routed(const torch::nn::Module& module);

void merge(torch::nn::Module& module);    // merge() every LoRA layer that is not merged
void unmerge(torch::nn::Module& module);  // unmerge() every LoRA layer that is merged

// ---------------------------------------------------------------------------- adapter files
// An adapters-only file is a vcycle checkpoint (checkpoint.h: magic, version, CRC, atomic write) whose
// meta JSON holds {"format": "vcycle-lora", "version", "r", "alpha", "dropout", "layers": [names]}
// (plus "slices": {layer: [{name, start, rows}]} for sliced layers) and whose tensors are
// `<layer>.lora_A` and `<layer>.lora_B` (`<layer>.lora_A_<slice>`, ... when sliced). Nothing of the
// base model is stored.
constexpr const char* kAdapterFormat = "vcycle-lora";
constexpr int kAdapterVersion = 1;

struct AdapterFile {
  LoRAOptions options;              // r, alpha, dropout the adapters were trained with
  std::vector<std::string> layers;  // wrapped layer names
  std::map<std::string, std::vector<SliceSpec>> slices;  // the sliced layers' slices (others: whole)
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // `<layer>.lora_A`, `<layer>.lora_B` (CPU)
};

// Writes the adapters of an injected `module` (unmerged values) to `path` atomically.
void save_adapters(const torch::nn::Module& module, const std::string& path);

// Reads and checks an adapter file. InputError naming the path and what is wrong.
AdapterFile read_adapters(const std::string& path);

// Loads adapters into `module`: injects the file's layers (by exact name) when `module` has no LoRA
// layers yet; otherwise its LoRA layers must be exactly the file's. A missing layer or a shape that
// differs is an InputError naming the tensor and both shapes. Returns the layer names.
std::vector<std::string> load_adapters(torch::nn::Module& module, const std::string& path);

}  // namespace vcycle::lora
