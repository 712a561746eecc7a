// The LLaMA adapter; see llama_adapter.h.
#include "llama_adapter.h"

#include <vcycle/core/errors.h>
#include <vcycle/schedules/level_plan.h>
#include <vcycle/core/tensor_map.h>
#include <vcycle/core/yaml_util.h>

namespace llama {

using vcycle::axis_in;
using vcycle::axis_none;
using vcycle::axis_out;

LlamaModelConfig llama_config_from_yaml(const YAML::Node& model, const std::string& file) {
  vcycle::YamlReader r(model, file, "model");
  // `type` chose this factory in the model registry, under whatever name the program registered it.
  r.get_or<std::string>("type", "llama");
  LlamaModelConfig out;
  LlamaConfig& c = out.model;
  c.layers = r.get_positive<int64_t>("layers");
  c.hidden = r.get_positive<int64_t>("hidden");
  c.heads = r.get_positive<int64_t>("heads");
  if (r.has("head_size")) {
    c.head_size = r.get_positive<int64_t>("head_size");
  } else {
    if (c.hidden % c.heads != 0) {
      r.fail("heads", "hidden (" + std::to_string(c.hidden) + ") is not divisible by heads (" +
                          std::to_string(c.heads) + "); set head_size explicitly");
    }
    c.head_size = c.hidden / c.heads;
  }
  if (c.head_size % 2 != 0) r.fail("head_size", "must be even (rotary embeddings rotate pairs), got " + std::to_string(c.head_size));
  c.ffn = r.get_positive<int64_t>("ffn");
  c.context = r.get_positive<int64_t>("context");
  c.vocab = r.get_or<int64_t>("vocab", 256);
  if (c.vocab <= 0 || c.vocab > 65536) r.fail("vocab", "must be in [1, 65536], got " + std::to_string(c.vocab));
  c.rope_base = r.get_or<double>("rope_base", 10000.0);
  if (!(c.rope_base > 1.0)) r.fail("rope_base", "must be > 1, got " + std::to_string(c.rope_base));
  c.norm_eps = r.get_or<double>("norm_eps", 1e-5);
  if (!(c.norm_eps > 0.0)) r.fail("norm_eps", "must be > 0, got " + std::to_string(c.norm_eps));
  out.param_map_file = r.get_or<std::string>("param_map", "");
  r.finish();
  return out;
}

vcycle::ParamMap llama_param_map(const LlamaConfig& cfg) {
  vcycle::ParamMap map;
  map.space("hidden").space("heads", /*unit=*/cfg.head_size).space("ffn");
  map.param("embed_tokens.weight", {axis_none(), axis_out("hidden")})
      .param("layers.{layer}.input_layernorm.weight", {axis_out("hidden")})
      .param("layers.{layer}.self_attn.q_proj.weight", {axis_out("heads"), axis_in("hidden")})
      .param("layers.{layer}.self_attn.k_proj.weight", {axis_out("heads"), axis_in("hidden")})
      .param("layers.{layer}.self_attn.v_proj.weight", {axis_out("heads"), axis_in("hidden")})
      .param("layers.{layer}.self_attn.o_proj.weight", {axis_out("hidden"), axis_in("heads")})
      .param("layers.{layer}.post_attention_layernorm.weight", {axis_out("hidden")})
      // gate and up share the ffn space: unit i of both feeds silu(gate_i)·up_i into column i of down.
      .param("layers.{layer}.mlp.gate_proj.weight", {axis_out("ffn"), axis_in("hidden")})
      .param("layers.{layer}.mlp.up_proj.weight", {axis_out("ffn"), axis_in("hidden")})
      .param("layers.{layer}.mlp.down_proj.weight", {axis_out("hidden"), axis_in("ffn")})
      .param("norm.weight", {axis_out("hidden")})
      .param("lm_head.weight", {axis_none(), axis_in("hidden")});
  return map;
}

vcycle::LevelShape llama_level_shape(const LlamaConfig& cfg) {
  vcycle::LevelShape s;
  s.sizes = {{"hidden", cfg.hidden}, {"heads", cfg.heads * cfg.head_size}, {"ffn", cfg.ffn}};
  s.layers = cfg.layers;
  return s;
}

LlamaConfig llama_config_for_shape(const LlamaConfig& base, const vcycle::LevelShape& shape) {
  LlamaConfig c = base;
  const int64_t attn = shape.size("heads");
  if (attn % base.head_size != 0) {
    throw vcycle::InputError("llama shape: heads size " + std::to_string(attn) + " is not a multiple of head_size " +
                             std::to_string(base.head_size));
  }
  c.layers = shape.layers;
  c.hidden = shape.size("hidden");
  c.heads = attn / base.head_size;
  c.ffn = shape.size("ffn");
  return c;
}

// ---------------------------------------------------------------------------- adapter
LlamaAdapter::LlamaAdapter(LlamaConfig cfg, std::optional<vcycle::ParamMap> map)
    : cfg_(cfg), map_(map ? std::move(*map) : llama_param_map(cfg)) {}

std::shared_ptr<LlamaAdapter> LlamaAdapter::from_yaml(const YAML::Node& model, const std::string& file) {
  const LlamaModelConfig c = llama_config_from_yaml(model, file);
  if (c.param_map_file.empty()) return std::make_shared<LlamaAdapter>(c.model);
  return std::make_shared<LlamaAdapter>(c.model, vcycle::param_map_load(c.param_map_file));
}

std::shared_ptr<torch::nn::Module> LlamaAdapter::build(const vcycle::LevelShape& shape) const {
  return Llama(llama_config_for_shape(cfg_, shape)).ptr();
}

torch::Tensor LlamaAdapter::loss(torch::nn::Module& module, const vcycle::Batch& batch) const {
  auto* model = dynamic_cast<LlamaImpl*>(&module);
  TORCH_CHECK(model != nullptr, "LlamaAdapter::loss: module is not a Llama");
  return model->loss(batch.input, batch.target);
}

vcycle::FlopShape LlamaAdapter::flop_shape(const vcycle::LevelShape& shape) const {
  const LlamaConfig c = llama_config_for_shape(cfg_, shape);
  const int64_t d_attn = c.heads * c.head_size;
  // Per block: q, k, v (d_attn × d each) + o (d × d_attn) + gate, up (f × d) and down (d × f);
  // plus the LM head (V × d).
  vcycle::FlopShape f;
  f.matmul_params = c.layers * (4 * d_attn * c.hidden + 3 * c.hidden * c.ffn) + c.vocab * c.hidden;
  f.layers = c.layers;
  f.context = c.context;
  f.attn_width = d_attn;
  return f;
}

void validate_param_map(const vcycle::RunConfig& cfg, const vcycle::ModelAdapter& adapter) {
  const vcycle::LevelPlan plan(cfg, adapter, cfg.levels.count);
  const vcycle::ParamMap map = adapter.param_map();
  for (int level = 1; level <= plan.count(); ++level) {
    const auto module = adapter.build(plan.shape(level));
    try {
      vcycle::param_map_validate(map, vcycle::module_tensors(*module), plan.shape(level));
    } catch (const vcycle::InputError& e) {
      throw vcycle::InputError("parameter map of model '" + adapter.type() + "' at level " + std::to_string(level) +
                               ": " + e.what());
    }
  }
}

}  // namespace llama
