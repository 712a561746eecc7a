// GPT <-> Hugging Face GPT-2 layout; see include/vcycle/io/hf_gpt2.h.
#include "vcycle/io/hf_gpt2.h"

#include <set>
#include <sstream>

#include <fmt/format.h>

#include "vcycle/core/errors.h"

namespace vcycle {

namespace {

// The mapping, written once. "{l}" stands for the block index; `untied_only` rows exist only when
// the LM head is its own matrix (tied, GPT-2 reuses wte and stores no lm_head).
struct Row {
  const char* vcycle;
  const char* hf;
  bool transposed;
  bool per_layer;
  bool untied_only;
};
constexpr Row kTable[] = {
    // vcycle name                    GPT-2 name                               Conv1D  layer  untied
    {"tok_emb.weight",                "transformer.wte.weight",                false,  false, false},
    {"pos_emb.weight",                "transformer.wpe.weight",                false,  false, false},
    {"blocks.{l}.ln1.weight",         "transformer.h.{l}.ln_1.weight",         false,  true,  false},
    {"blocks.{l}.ln1.bias",           "transformer.h.{l}.ln_1.bias",           false,  true,  false},
    {"blocks.{l}.attn.qkv.weight",    "transformer.h.{l}.attn.c_attn.weight",  true,   true,  false},
    {"blocks.{l}.attn.qkv.bias",      "transformer.h.{l}.attn.c_attn.bias",    false,  true,  false},
    {"blocks.{l}.attn.proj.weight",   "transformer.h.{l}.attn.c_proj.weight",  true,   true,  false},
    {"blocks.{l}.attn.proj.bias",     "transformer.h.{l}.attn.c_proj.bias",    false,  true,  false},
    {"blocks.{l}.ln2.weight",         "transformer.h.{l}.ln_2.weight",         false,  true,  false},
    {"blocks.{l}.ln2.bias",           "transformer.h.{l}.ln_2.bias",           false,  true,  false},
    {"blocks.{l}.mlp.fc.weight",      "transformer.h.{l}.mlp.c_fc.weight",     true,   true,  false},
    {"blocks.{l}.mlp.fc.bias",        "transformer.h.{l}.mlp.c_fc.bias",       false,  true,  false},
    {"blocks.{l}.mlp.proj.weight",    "transformer.h.{l}.mlp.c_proj.weight",   true,   true,  false},
    {"blocks.{l}.mlp.proj.bias",      "transformer.h.{l}.mlp.c_proj.bias",     false,  true,  false},
    {"ln_f.weight",                   "transformer.ln_f.weight",               false,  false, false},
    {"ln_f.bias",                     "transformer.ln_f.bias",                 false,  false, false},
    {"head.weight",                   "lm_head.weight",                        false,  false, true},
};

std::string with_layer(std::string s, int64_t l) {
  const auto at = s.find("{l}");
  if (at != std::string::npos) s.replace(at, 3, std::to_string(l));
  return s;
}

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

}  // namespace

std::vector<HfTensorName> gpt_hf_names(const GPTConfig& cfg) {
  std::vector<HfTensorName> out;
  for (const Row& r : kTable) {
    if (r.untied_only && cfg.tied_embeddings) continue;
    const int64_t n = r.per_layer ? cfg.layers : 1;
    for (int64_t l = 0; l < n; ++l) out.push_back({with_layer(r.vcycle, l), with_layer(r.hf, l), r.transposed});
  }
  return out;
}

std::string gpt_hf_module_name(const std::string& vcycle_module) {
  GPTConfig cfg;  // enough layers to hold the named block; untied so that `head` has its row
  cfg.tied_embeddings = false;
  cfg.layers = 1;
  if (vcycle_module.rfind("blocks.", 0) == 0) {
    try {
      cfg.layers = std::stoll(vcycle_module.substr(7)) + 1;
    } catch (const std::exception&) {
    }
  }
  for (const auto& n : gpt_hf_names(cfg)) {
    if (n.vcycle == vcycle_module + ".weight") return n.hf.substr(0, n.hf.size() - 7);
  }
  throw InputError("layer '" + vcycle_module + "' has no GPT-2 counterpart");
}

void gpt_hf_check(const GPTConfig& cfg) {
  if (cfg.heads * cfg.head_size != cfg.hidden) {
    throw InputError(fmt::format("the GPT-2 layout needs heads·head_size == hidden (GPT-2 splits n_embd into n_head "
                                 "heads); this model has heads {} × head_size {} = {} but hidden {}",
                                 cfg.heads, cfg.head_size, cfg.heads * cfg.head_size, cfg.hidden));
  }
}

TensorMap gpt_to_hf(const TensorMap& tensors, const GPTConfig& cfg) {
  gpt_hf_check(cfg);
  TensorMap out;
  for (const auto& n : gpt_hf_names(cfg)) {
    const auto it = tensors.find(n.vcycle);
    if (it == tensors.end()) throw InputError("export: the model has no tensor '" + n.vcycle + "'");
    auto t = it->second.detach().to(torch::kCPU);
    out[n.hf] = (n.transposed ? t.t() : t).contiguous();
  }
  return out;
}

TensorMap gpt_from_hf(const TensorMap& hf, const GPTConfig& cfg, const std::string& what) {
  gpt_hf_check(cfg);
  // The shapes a GPT of `cfg` has, in vcycle's layout.
  GPTImpl reference(cfg);
  const TensorMap expected = module_tensors(reference);
  TensorMap out;
  std::set<std::string> used;
  for (const auto& n : gpt_hf_names(cfg)) {
    const auto it = hf.find(n.hf);
    if (it == hf.end()) throw InputError(what + ": missing tensor '" + n.hf + "' (vcycle's '" + n.vcycle + "')");
    auto t = n.transposed ? it->second.t().contiguous() : it->second.clone();
    const auto& want = expected.at(n.vcycle);
    if (t.sizes() != want.sizes()) {
      throw InputError(fmt::format("{}: tensor '{}' has shape {}, the config's model expects {} ({}'{}' {})", what, n.hf,
                                   shape_str(it->second), shape_str(n.transposed ? want.t() : want),
                                   n.transposed ? "Conv1D layout of " : "", n.vcycle, shape_str(want)));
    }
    out[n.vcycle] = t.to(want.scalar_type());
    used.insert(n.hf);
  }
  for (const auto& [name, t] : hf) {
    // transformers (older releases) stored the causal-mask buffers; they carry no weights.
    auto ends_with = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    const bool mask_buffer = ends_with(".attn.bias") || ends_with(".attn.masked_bias");
    if (!used.count(name) && !mask_buffer) {
      throw InputError(what + ": unexpected tensor '" + name + "' (not part of a GPT-2 of the config's shape" +
                       (cfg.tied_embeddings && name == "lm_head.weight" ? "; the config ties the LM head to wte" : "") +
                       ")");
    }
  }
  return out;
}

nlohmann::json gpt_hf_config(const GPTConfig& cfg) {
  gpt_hf_check(cfg);
  return {{"architectures", {"GPT2LMHeadModel"}},
          {"model_type", "gpt2"},
          {"vocab_size", cfg.vocab},
          {"n_positions", cfg.context},
          {"n_ctx", cfg.context},
          {"n_embd", cfg.hidden},
          {"n_layer", cfg.layers},
          {"n_head", cfg.heads},
          {"n_inner", cfg.ffn},
          {"activation_function", "gelu"},  // exact (erf) GELU, as torch::gelu computes it
          {"layer_norm_epsilon", 1e-5},
          {"resid_pdrop", 0.0},
          {"embd_pdrop", 0.0},
          {"attn_pdrop", 0.0},
          {"scale_attn_weights", true},
          {"tie_word_embeddings", cfg.tied_embeddings},
          {"torch_dtype", "float32"}};
}

void gpt_hf_config_check(const nlohmann::json& config, const GPTConfig& cfg, const std::string& what) {
  const nlohmann::json want = gpt_hf_config(cfg);
  // A GPT-2 config.json may leave n_inner null (= 4·n_embd) and tie_word_embeddings out (= true).
  nlohmann::json have = config;
  if (!have.contains("n_inner") || have["n_inner"].is_null()) have["n_inner"] = 4 * have.value("n_embd", int64_t{0});
  if (!have.contains("tie_word_embeddings")) have["tie_word_embeddings"] = true;
  for (const char* key : {"vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "tie_word_embeddings"}) {
    if (!have.contains(key) || have[key] != want[key]) {
      throw InputError(fmt::format("{}: {} is {}, the config's model has {}", what, key,
                                   have.contains(key) ? have[key].dump() : "missing", want[key].dump()));
    }
  }
  const std::string act = have.value("activation_function", std::string("gelu_new"));
  if (act != "gelu") {
    throw InputError(what + ": activation_function is \"" + act +
                     "\"; vcycle's GPT computes the exact GELU (\"gelu\"), so the weights would compute another function");
  }
}

}  // namespace vcycle
