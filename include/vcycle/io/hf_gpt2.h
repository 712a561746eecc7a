// The built-in GPT in Hugging Face's GPT-2 layout (transformers' GPT2LMHeadModel): the tensor names,
// the weight layout, and config.json.
//
// Our GPT is GPT-2's architecture (pre-LayerNorm blocks, learned positions, exact GELU when
// config.json says "gelu", tied LM head by default), so the mapping is a renaming plus one layout
// change: GPT-2 keeps its linear layers as Conv1D modules, whose weight is (in, out), the transpose
// of torch.nn.Linear's (out, in). The fused q/k/v projection stays fused as `c_attn` (the same
// q | k | v chunk order on the output axis).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vcycle/core/tensor_map.h"
#include "vcycle/models/gpt/gpt.h"

namespace vcycle {

// One tensor of the mapping: its vcycle name, its GPT-2 name, and whether the weight is transposed.
struct HfTensorName {
  std::string vcycle;
  std::string hf;
  bool transposed = false;  // a Conv1D weight: hf = vcycleᵀ
};

// Every tensor of a GPT built from `cfg`, per layer expanded (the table lives in hf_gpt2.cpp).
std::vector<HfTensorName> gpt_hf_names(const GPTConfig& cfg);

// InputError when `cfg` has no GPT-2 equivalent (GPT-2 splits n_embd into n_head heads, so
// heads·head_size must equal hidden).
void gpt_hf_check(const GPTConfig& cfg);

// The GPT-2 module name of one of our linear layers ("blocks.3.attn.qkv" -> "transformer.h.3.attn.c_attn"),
// from the same table. InputError naming the layer when it has no GPT-2 counterpart.
std::string gpt_hf_module_name(const std::string& vcycle_module);

// vcycle tensors -> GPT-2 tensors (contiguous CPU copies). InputError naming a missing tensor.
TensorMap gpt_to_hf(const TensorMap& tensors, const GPTConfig& cfg);
// GPT-2 tensors -> vcycle tensors. InputError naming `what` and the tensor when one is missing,
// unexpected, or of the wrong shape.
TensorMap gpt_from_hf(const TensorMap& hf, const GPTConfig& cfg, const std::string& what);

// config.json for GPT2LMHeadModel: model_type gpt2, n_layer, n_embd, n_head, n_inner, n_positions,
// vocab_size, activation_function "gelu", tie_word_embeddings, layer_norm_epsilon 1e-5, no dropout.
nlohmann::json gpt_hf_config(const GPTConfig& cfg);
// Checks a config.json against `cfg`; InputError naming `what`, the field and both values.
void gpt_hf_config_check(const nlohmann::json& config, const GPTConfig& cfg, const std::string& what);

}  // namespace vcycle
