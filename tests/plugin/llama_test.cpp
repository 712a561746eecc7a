// The plug-in example's LLaMA (examples/custom_model) under vcycle's operators: its parameter map
// gives an exact round trip and function-preserving width de-coalescing, its YAML map equals the C++
// one, and a map that misses a parameter or declares a wrong axis size fails naming the parameter.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "llama.h"
#include "llama_adapter.h"
#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/core/errors.h"
#include "vcycle/schedules/experiment.h"
#include "vcycle/models/registry.h"
#include "vcycle/operators/operators.h"
#include "vcycle/core/tensor_map.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using llama::Llama;
using llama::LlamaConfig;

namespace {

// Every width space can grow by 4; head_size 4 keeps rotary (pairs of features) meaningful.
LlamaConfig small_llama() {
  LlamaConfig c;
  c.layers = 2; c.hidden = 8; c.heads = 2; c.head_size = 4; c.ffn = 12; c.context = 6; c.vocab = 11;
  return c;
}

LevelShape grow(LevelShape s, int64_t kw, int64_t kd) {
  for (auto& [name, size] : s.sizes) size *= kw;
  s.layers *= kd;
  return s;
}

// Random values for every tensor (norm gains too), so no tensor is trivially constant.
TensorMap random_tensors(const LlamaConfig& cfg) {
  Llama model(cfg);
  TensorMap out;
  for (const auto& [name, t] : module_tensors(*model)) out[name] = torch::randn(t.sizes());
  return out;
}

std::string first_difference(const TensorMap& a, const TensorMap& b) {
  if (a.size() != b.size()) return "tensor counts differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end()) return name + " missing";
    if (t.sizes() != it->second.sizes() || !torch::equal(t, it->second)) return name;
  }
  return "";
}

std::string describe(const CoalesceFactors& f) {
  std::ostringstream out;
  out << "width " << f.width << " (" << to_string(f.width_pairing) << ") depth " << f.depth << " ("
      << to_string(f.depth_pairing) << ")";
  return out.str();
}

template <class Fn>
std::string input_error(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Trains a LLaMA a few dozen AdamW steps on fixed random tokens, so its weights (norm gains
// included) are no longer at their initial values.
Llama trained_llama(const LlamaConfig& cfg, uint64_t seed) {
  torch::manual_seed(seed);
  Llama model(cfg);
  const auto x = torch::randint(0, cfg.vocab, {8, cfg.context}, torch::kLong);
  const auto y = torch::randint(0, cfg.vocab, {8, cfg.context}, torch::kLong);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.01));
  const double first = model->loss(x, y).item<double>();
  double last = first;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    auto loss = model->loss(x, y);
    loss.backward();
    opt.step();
    last = loss.item<double>();
  }
  REQUIRE(last < 0.8 * first);  // it did train
  const auto gamma = model->norm->weight.detach();
  REQUIRE((gamma - 1).abs().max().item<double>() > 1e-3);  // the final RMSNorm gain moved off 1
  return model;
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// A map equal to `map` without `drop`, or with `replace`'s axes for one pattern.
ParamMap edited(const ParamMap& map, const std::string& drop, const std::string& replace = "",
                std::vector<AxisSpec> axes = {}) {
  ParamMap out;
  for (const auto& [space, unit] : map.spaces()) out.space(space, unit);
  for (const auto& spec : map.params()) {
    if (spec.pattern == drop) continue;
    out.param(spec.pattern, spec.pattern == replace ? axes : spec.axes);
  }
  return out;
}

std::string tiny_run_config(const std::string& data, const std::string& out, const std::string& extra_model = "") {
  return "name: llama-tiny\nseed: 3\nthreads: 1\n"
         "model: { type: llama, layers: 2, hidden: 16, heads: 2, head_size: 8, ffn: 24, context: 16" + extra_model + " }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 4 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2 }\n"
         "phases:\n"
         "  - { level: 1, steps: 4, lr: 3e-3, warmup: 1 }\n"
         "  - { level: 2, steps: 6, lr: 3e-3, warmup: 1 }\n"
         "  - { level: 1, steps: 6, lr: 2e-3 }\n"
         "baseline: { steps: 12, lr: 3e-3, warmup: 1 }\n"
         "eval: { every: 4, batches: 2 }\n"
         "train: { log_every: 2, checkpoint_every: 5 }\n"
         "output: " + out + "\n";
}

}  // namespace

TEST_CASE("LLaMA: coalesce(decoalesce(θ)) == θ bitwise", "[plugin][roundtrip]") {
  torch::manual_seed(40);
  const auto cfg = small_llama();
  const auto map = llama::llama_param_map(cfg);
  const auto theta = random_tensors(cfg);
  REQUIRE(theta.size() == 3 + 9 * static_cast<size_t>(cfg.layers));  // no buffers: rotary has no state
  for (auto [w, d] : std::vector<std::pair<int64_t, int64_t>>{{2, 1}, {1, 2}, {2, 2}, {4, 1}, {4, 4}}) {
    for (auto wp : {Pairing::halves, Pairing::neighbors}) {
      for (auto dp : {Pairing::halves, Pairing::neighbors}) {
        const CoalesceFactors f{w, d, wp, dp};
        INFO(describe(f));
        const auto large = grow(llama::llama_level_shape(cfg), w, d);
        const auto big = decoalesce(theta, map, large, f);
        param_map_validate(map, big, large);
        const std::string diff = first_difference(coalesce(big, map, large, f), theta);
        INFO("first tensor that differs: " << diff);
        CHECK(diff.empty());
        // and the large tensors load into the LLaMA of the large shape
        Llama model(llama::llama_config_for_shape(cfg, large));
        CHECK(model->cfg.heads == cfg.heads * w);
        load_module_tensors(*model, big);
      }
    }
  }
}

TEST_CASE("LLaMA: width de-coalescing a trained model preserves its logits", "[plugin][function]") {
  LlamaConfig cfg;
  cfg.layers = 2; cfg.hidden = 16; cfg.heads = 2; cfg.head_size = 8; cfg.ffn = 24; cfg.context = 16; cfg.vocab = 40;
  auto small = trained_llama(cfg, 41);
  const auto map = llama::llama_param_map(cfg);
  const auto theta = module_tensors(*small);
  const auto idx = torch::randint(0, cfg.vocab, {3, cfg.context}, torch::kLong);
  torch::NoGradGuard no_grad;
  const auto want = small->forward(idx);
  for (int64_t k : {2, 4}) {
    for (auto p : {Pairing::halves, Pairing::neighbors}) {
      INFO("k=" << k << " " << to_string(p));
      const CoalesceFactors f{k, 1, p, Pairing::halves};
      const auto large = grow(llama::llama_level_shape(cfg), k, 1);
      Llama big(llama::llama_config_for_shape(cfg, large));
      REQUIRE(big->cfg.heads == cfg.heads * k);
      REQUIRE(big->cfg.head_size == cfg.head_size);  // heads merge whole; rotary and 1/sqrt(h) unchanged
      load_module_tensors(*big, decoalesce(theta, map, large, f));
      const auto got = big->forward(idx);
      const double err = max_abs(got - want), scale = max_abs(want);
      INFO("max |Δlogit| = " << err << ", max |logit| = " << scale);
      // fp32 sums over k times more terms reorder rounding; 1e-4 relative is the spec's bound.
      CHECK(err <= 1e-4 * scale);
    }
  }
  // Controls: the test notices a wrong role. RMSNorm γ taking the in role (divided by k) scales the
  // logits by 1/k; splitting down_proj's ffn columns as out (copied, not divided) doubles the MLP.
  const auto large = grow(llama::llama_level_shape(cfg), 2, 1);
  for (const auto& [pattern, axes] : std::vector<std::pair<std::string, std::vector<AxisSpec>>>{
           {"norm.weight", {axis_in("hidden")}},
           {"layers.{layer}.mlp.down_proj.weight", {axis_out("hidden"), axis_out("ffn")}}}) {
    INFO("wrong role on " << pattern);
    const auto wrong = edited(map, "", pattern, axes);
    Llama big(llama::llama_config_for_shape(cfg, large));
    load_module_tensors(*big, decoalesce(theta, wrong, large, {2, 1}));
    CHECK(max_abs(big->forward(idx) - want) > 1e-2 * max_abs(want));
  }
}

TEST_CASE("LLaMA: the model is causal and rotary encodes relative position", "[plugin]") {
  torch::manual_seed(42);
  auto cfg = small_llama();
  Llama model(cfg);
  torch::NoGradGuard no_grad;
  auto a = torch::randint(0, cfg.vocab, {2, cfg.context}, torch::kLong);
  auto b = a.clone();
  b.index_put_({torch::indexing::Slice(), cfg.context - 1}, (a.select(1, cfg.context - 1) + 1) % cfg.vocab);
  const auto la = model->forward(a), lb = model->forward(b);
  CHECK(torch::allclose(la.narrow(1, 0, cfg.context - 1), lb.narrow(1, 0, cfg.context - 1), 1e-5, 1e-6));  // the past ignores the future
  CHECK_FALSE(torch::allclose(la.select(1, cfg.context - 1), lb.select(1, cfg.context - 1)));
  // ⟨R(p)q, R(p')k⟩ depends on p − p' only.
  const auto q = torch::randn({1, 1, 1, 8}).expand({1, 1, 6, 8}).contiguous();
  const auto k = torch::randn({1, 1, 1, 8}).expand({1, 1, 6, 8}).contiguous();
  const auto rq = llama::apply_rotary(q, 10000.0), rk = llama::apply_rotary(k, 10000.0);
  const auto dots = torch::matmul(rq, rk.transpose(-2, -1))[0][0];  // (6, 6)
  for (int64_t i = 1; i < 6; ++i) {
    CHECK(dots[i][i - 1].item<double>() == Approx(dots[1][0].item<double>()).epsilon(1e-5).margin(1e-5));
  }
  CHECK(dots[3][3].item<double>() == Approx(torch::dot(q[0][0][0], k[0][0][0]).item<double>()).epsilon(1e-5).margin(1e-5));
}

TEST_CASE("LLaMA: the YAML parameter map file equals the C++ map", "[plugin][param_map]") {
  const auto from_file = param_map_load(test::source_path("examples/custom_model/configs/llama_param_map.yaml"));
  auto cfg = small_llama();
  cfg.head_size = 64;  // the file is written for the example config's head size
  CHECK(from_file == llama::llama_param_map(cfg));
  CHECK(param_map_from_yaml(YAML::Load(param_map_to_yaml(from_file)), "round trip") == from_file);
}

TEST_CASE("LLaMA: a parameter map missing a parameter or with a wrong axis size fails naming it",
          "[plugin][param_map]") {
  torch::manual_seed(43);
  const auto cfg = small_llama();
  const auto map = llama::llama_param_map(cfg);
  const auto shape = llama::llama_level_shape(cfg);
  Llama model(cfg);
  const auto tensors = module_tensors(*model);
  REQUIRE_NOTHROW(param_map_validate(map, tensors, shape));

  SECTION("missing parameter") {
    const auto msg = input_error([&] {
      param_map_validate(edited(map, "layers.{layer}.mlp.up_proj.weight"), tensors, shape);
    });
    CHECK_THAT(msg, Catch::Contains("'layers.0.mlp.up_proj.weight'") && Catch::Contains("not covered"));
    // the operators check the same before they act
    CHECK_THAT(input_error([&] { coalesce(tensors, edited(map, "lm_head.weight"), shape, {}); }),
               Catch::Contains("'lm_head.weight'"));
  }
  SECTION("wrong axis size: q_proj's rows declared in the ffn space") {
    const auto msg = input_error([&] {
      param_map_validate(edited(map, "", "layers.{layer}.self_attn.q_proj.weight", {axis_out("ffn"), axis_in("hidden")}),
                         tensors, shape);
    });
    CHECK_THAT(msg, Catch::Contains("'layers.0.self_attn.q_proj.weight'") && Catch::Contains("has size 8, expected 12"));
  }
  SECTION("wrong axis size: a fused-QKV habit (3 chunks) on the separate k_proj") {
    const auto msg = input_error([&] {
      param_map_validate(edited(map, "", "layers.{layer}.self_attn.k_proj.weight", {axis_out("heads", 3), axis_in("hidden")}),
                         tensors, shape);
    });
    CHECK_THAT(msg, Catch::Contains("'layers.0.self_attn.k_proj.weight'") && Catch::Contains("expected 24"));
  }
  SECTION("a pattern naming no tensor") {
    const auto msg = input_error([&] {
      param_map_validate(edited(map, "", "", {}).param("layers.{layer}.mlp.bias", {axis_out("ffn")}), tensors, shape);
    });
    CHECK_THAT(msg, Catch::Contains("'layers.{layer}.mlp.bias'"));
  }
}

TEST_CASE("LLaMA adapter: a YAML map file with an error fails before training, naming the parameter",
          "[plugin][param_map]") {
  test::TempDir dir("llama_map");
  test::prepare_fixture_corpus(dir.str("data"));
  // The example's map file adapted to head_size 8, then broken two ways.
  std::ifstream in(test::source_path("examples/custom_model/configs/llama_param_map.yaml"));
  std::stringstream text;
  text << in.rdbuf();
  std::string good = text.str();
  good.replace(good.find("{unit: 64}"), 10, "{unit: 8}");
  std::string missing = good;
  missing.erase(missing.find("  \"layers.{layer}.mlp.gate_proj.weight\""),
                missing.find("  \"layers.{layer}.mlp.up_proj.weight\"") - missing.find("  \"layers.{layer}.mlp.gate_proj.weight\""));
  std::string wrong = good;
  const std::string o_proj_axes = "{axes: [{space: hidden, role: out}, {space: heads, role: in}]}";
  wrong.replace(wrong.find(o_proj_axes), o_proj_axes.size(), "{axes: [{space: hidden, role: out}, {space: ffn, role: in}]}");
  test::write_text(dir.str("good.yaml"), good);
  test::write_text(dir.str("missing.yaml"), missing);
  test::write_text(dir.str("wrong.yaml"), wrong);

  auto check = [&](const std::string& map_file) {
    test::write_text(dir.str("c.yaml"), tiny_run_config(dir.str("data"), dir.str("out"), ", param_map: " + dir.str(map_file)));
    const RunConfig cfg = load_config_unchecked(dir.str("c.yaml"));
    const auto adapter = llama::LlamaAdapter::from_config(cfg);
    // vcycle's own check (validate_model_config) and the example's must both name the tensor.
    return input_error([&] {
      validate_model_config(cfg, *adapter);
      llama::validate_param_map(cfg, *adapter);
    });
  };
  CHECK(check("good.yaml").empty());
  CHECK_THAT(check("missing.yaml"), Catch::Contains("'layers.0.mlp.gate_proj.weight'"));
  CHECK_THAT(check("wrong.yaml"), Catch::Contains("'layers.0.self_attn.o_proj.weight'") && Catch::Contains("level 1"));
}

TEST_CASE("LLaMA adapter: model section, FLOP shape, and a V-cycle through run_experiment", "[plugin]") {
  test::TempDir dir("llama_run");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), tiny_run_config(dir.str("data"), dir.str("out")));
  const RunConfig cfg = load_config_unchecked(dir.str("c.yaml"));
  const auto adapter = llama::LlamaAdapter::from_config(cfg);
  CHECK(adapter->config().ffn == 24);
  CHECK(adapter->config().head_size == 8);
  validate_model_config(cfg, *adapter);
  llama::validate_param_map(cfg, *adapter);

  // N_mm is every matrix the model multiplies by: all 2-D weights except the embedding lookup.
  for (const LevelShape& shape : {adapter->top_shape(), LevelShape{{{"hidden", 8}, {"heads", 8}, {"ffn", 12}}, 1}}) {
    INFO(shape.to_string());
    const auto module = adapter->build(shape);
    int64_t matmul = 0;
    for (const auto& p : module->named_parameters()) {
      if (p.value().dim() == 2 && p.key() != "embed_tokens.weight") matmul += p.value().numel();
    }
    CHECK(adapter->flop_shape(shape).matmul_params == matmul);
    CHECK(adapter->flop_shape(shape).attn_width == shape.size("heads"));
  }

  // Bad model sections name the key.
  std::string odd = tiny_run_config(dir.str("data"), dir.str("out"));
  odd.replace(odd.find("head_size: 8"), 12, "head_size: 7");
  test::write_text(dir.str("bad.yaml"), odd);
  CHECK_THAT(input_error([&] { llama::LlamaAdapter::from_config(load_config_unchecked(dir.str("bad.yaml"))); }),
             Catch::Contains("model.head_size") && Catch::Contains("even"));
  test::write_text(dir.str("bad2.yaml"), tiny_run_config(dir.str("data"), dir.str("out"), ", dropout: 0.1"));
  CHECK_THAT(input_error([&] { llama::LlamaAdapter::from_config(load_config_unchecked(dir.str("bad2.yaml"))); }),
             Catch::Contains("dropout"));

  // The scheduler, checkpoints and report work as for the GPT.
  const auto report = run_experiment(cfg, *adapter, ExperimentOptions{false, false, true});
  REQUIRE(report.has_value());
  const auto json = nlohmann::json::parse(std::ifstream(dir.str("out/report.json")));
  const auto& phases = json["vcycle"]["phases"];
  REQUIRE(phases.size() == 3);
  CHECK(phases[1]["shape"] == "layers=1 ffn=12 heads=8 hidden=8");
  CHECK(json["baseline"]["operator_flops"].get<double>() == 0);
  CHECK(json["vcycle"]["operator_flops"].get<double>() > 0);
  CHECK(std::filesystem::exists(dir.str("out/vcycle/checkpoint.ckpt")));
  CHECK_THAT(report->markdown, Catch::Contains("L*"));
}
