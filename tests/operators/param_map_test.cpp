// Parameter map: validation errors name the culprit, level shapes check divisibility, the YAML
// form round-trips.
#include <cstdio>
#include <fstream>

#include "op_test_util.h"

#include <yaml-cpp/yaml.h>

using namespace vcycle;
using optest::input_error;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct Gpt {
  GPTConfig cfg;
  ParamMap map;
  LevelShape shape;
  TensorMap tensors;
};

Gpt gpt(bool tied) {
  torch::manual_seed(30);
  Gpt g;
  g.cfg = optest::small_gpt(tied);
  g.map = gpt_param_map(g.cfg);
  g.shape = gpt_level_shape(g.cfg);
  g.tensors = optest::random_gpt_tensors(g.cfg);
  return g;
}

// A map equal to `map` plus one more param.
ParamMap with_param(const ParamMap& map, const std::string& pattern, std::vector<AxisSpec> axes) {
  ParamMap out = map;
  out.param(pattern, std::move(axes));
  return out;
}

}  // namespace

TEST_CASE("the GPT map validates against GPT tensors, tied and untied", "[operators][param_map]") {
  for (bool tied : {true, false}) {
    auto g = gpt(tied);
    param_map_validate(g.map, g.tensors, g.shape);
    // ln_f takes the in role exactly when tied (spec §4)
    const ParamSpec* ln_f = nullptr;
    for (const auto& p : g.map.params()) {
      if (p.pattern == "ln_f.weight") ln_f = &p;
    }
    REQUIRE(ln_f != nullptr);
    CHECK(ln_f->axes.at(0)->role == (tied ? AxisRole::in : AxisRole::out));
    CHECK(g.map.unit("heads") == g.cfg.head_size);
    CHECK((g.shape == LevelShape{{{"hidden", 8}, {"heads", 8}, {"ffn", 16}}, 2}));
    // and the whole thing survives GPTConfig -> shape -> GPTConfig
    const auto back = gpt_config_for_shape(g.cfg, g.shape);
    CHECK(back.heads == g.cfg.heads);
    CHECK(back.hidden == g.cfg.hidden);
    CHECK(back.ffn == g.cfg.ffn);
    CHECK(back.layers == g.cfg.layers);
    CHECK(back.vocab == g.cfg.vocab);
  }
}

TEST_CASE("validation: an uncovered tensor is named", "[operators][param_map]") {
  auto g = gpt(true);
  g.tensors["extra.scale"] = torch::ones({8});
  const auto msg = input_error([&] { param_map_validate(g.map, g.tensors, g.shape); });
  CHECK(contains(msg, "'extra.scale'"));
  CHECK(contains(msg, "not covered"));
  // the operators validate too
  CHECK(contains(input_error([&] { coalesce(g.tensors, g.map, g.shape, {}); }), "'extra.scale'"));
  // the untied head is uncovered by the tied map
  auto u = gpt(false);
  CHECK(contains(input_error([&] { param_map_validate(gpt_param_map(g.cfg), u.tensors, u.shape); }), "'head.weight'"));
}

TEST_CASE("validation: a wrong axis size names the tensor and the sizes", "[operators][param_map]") {
  auto g = gpt(false);
  g.tensors["blocks.1.attn.qkv.weight"] = torch::zeros({25, 8});  // 3·8 = 24 rows expected
  const auto msg = input_error([&] { param_map_validate(g.map, g.tensors, g.shape); });
  CHECK(contains(msg, "'blocks.1.attn.qkv.weight'"));
  CHECK(contains(msg, "axis 0"));
  CHECK(contains(msg, "25"));
  CHECK(contains(msg, "24"));
  // and a wrong number of axes
  auto h = gpt(false);
  h.tensors["ln_f.bias"] = torch::zeros({8, 1});
  const auto dims = input_error([&] { param_map_validate(h.map, h.tensors, h.shape); });
  CHECK(contains(dims, "'ln_f.bias'"));
  CHECK(contains(dims, "axes"));
  // the shape passed must be the tensors' shape: GPT tensors against a doubled shape
  auto k = gpt(true);
  const auto wrong = optest::grow(k.shape, 2, 1);
  CHECK(contains(input_error([&] { decoalesce(k.tensors, k.map, optest::grow(wrong, 2, 1), {2, 1}); }), "size"));
}

TEST_CASE("validation: a pattern that matches nothing is named", "[operators][param_map]") {
  auto g = gpt(true);
  auto map = with_param(g.map, "blocks.{layer}.attn.rotary", {axis_none()});
  const auto msg = input_error([&] { param_map_validate(map, g.tensors, g.shape); });
  CHECK(contains(msg, "'blocks.{layer}.attn.rotary'"));
  CHECK(contains(msg, "matches no tensor"));
  auto exact = with_param(g.map, "lm_bias", {axis_none()});
  CHECK(contains(input_error([&] { param_map_validate(exact, g.tensors, g.shape); }), "'lm_bias'"));
}

TEST_CASE("validation: layer indices out of range, missing layers, double coverage", "[operators][param_map]") {
  auto g = gpt(true);
  auto extra = g.tensors;
  extra["blocks.2.ln1.weight"] = torch::ones({8});  // the level has 2 layers
  auto msg = input_error([&] { param_map_validate(g.map, extra, g.shape); });
  CHECK(contains(msg, "'blocks.2.ln1.weight'"));
  CHECK(contains(msg, "layer index 2"));

  auto missing = g.tensors;
  missing.erase("blocks.1.mlp.fc.bias");
  msg = input_error([&] { param_map_validate(g.map, missing, g.shape); });
  CHECK(contains(msg, "blocks.1.mlp.fc.bias"));
  CHECK(contains(msg, "layer 1"));

  auto twice = with_param(g.map, "blocks.0.ln1.weight", {axis_out("hidden")});
  msg = input_error([&] { param_map_validate(twice, g.tensors, g.shape); });
  CHECK(contains(msg, "'blocks.0.ln1.weight'"));
  CHECK(contains(msg, "'blocks.{layer}.ln1.weight'"));

  // "blocks.01.…" is not block 1: one spelling per index
  auto zero = g.tensors;
  zero["blocks.01.ln1.weight"] = zero.at("blocks.1.ln1.weight");
  CHECK(contains(input_error([&] { param_map_validate(g.map, zero, g.shape); }), "'blocks.01.ln1.weight'"));
}

TEST_CASE("pattern matching of {layer}", "[operators][param_map]") {
  const ParamSpec spec{"blocks.{layer}.attn.qkv.weight", {}};
  CHECK(spec.layered());
  CHECK(spec.match("blocks.0.attn.qkv.weight") == 0);
  CHECK(spec.match("blocks.17.attn.qkv.weight") == 17);
  CHECK_FALSE(spec.match("blocks..attn.qkv.weight"));
  CHECK_FALSE(spec.match("blocks.x.attn.qkv.weight"));
  CHECK_FALSE(spec.match("blocks.1.attn.qkv.bias"));
  CHECK_FALSE(spec.match("blocks.1.2.attn.qkv.weight"));
  CHECK_FALSE(spec.match("xblocks.1.attn.qkv.weight"));
  CHECK(spec.name_for(5) == "blocks.5.attn.qkv.weight");
  const ParamSpec plain{"ln_f.weight", {}};
  CHECK_FALSE(plain.layered());
  CHECK(plain.match("ln_f.weight") == -1);
  CHECK_FALSE(plain.match("ln_f.bias"));
  const ParamSpec tail{"{layer}", {}};
  CHECK(tail.match("3") == 3);
  CHECK_FALSE(tail.match(""));
}

TEST_CASE("builder errors name the space or pattern", "[operators][param_map]") {
  ParamMap map;
  map.space("hidden");
  CHECK(contains(input_error([&] { map.space("hidden"); }), "'hidden'"));
  CHECK(contains(input_error([&] { map.space("heads", 0); }), "'heads'"));
  CHECK(contains(input_error([&] { map.param("w", {axis_out("ffn")}); }), "'ffn'"));
  CHECK(contains(input_error([&] { map.param("w", {axis_out("hidden", 0)}); }), "chunks"));
  CHECK(contains(input_error([&] { map.param("b.{layer}.{layer}", {}); }), "more than one {layer}"));
  CHECK(contains(input_error([&] { map.param("b.{Layer}.w", {}); }), "'b.{Layer}.w'"));
  map.param("w", {axis_none()});
  CHECK(contains(input_error([&] { map.param("w", {axis_none()}); }), "'w'"));
  CHECK(contains(input_error([&] { map.unit("ffn"); }), "'ffn'"));
}

TEST_CASE("level shapes divide every space and the layers, and indivisible sizes are named", "[operators][param_map]") {
  auto cfg = optest::small_gpt(true);
  cfg.layers = 8;
  cfg.hidden = 24;
  cfg.heads = 16;
  cfg.head_size = 1;
  cfg.ffn = 64;
  const auto map = gpt_param_map(cfg);
  const auto top = gpt_level_shape(cfg);
  auto shapes = level_shapes(map, top, {}, 3);
  REQUIRE(shapes.size() == 3);
  CHECK(shapes[0] == top);
  CHECK((shapes[2] == LevelShape{{{"hidden", 6}, {"heads", 4}, {"ffn", 16}}, 2}));
  CHECK((level_shapes(map, top, {1, 2}, 4).back() == LevelShape{{{"hidden", 24}, {"heads", 16}, {"ffn", 64}}, 1}));
  CHECK(level_shapes(map, top, {2, 1}, 3).back().layers == 8);
  CHECK(level_shapes(map, top, {}, 1).size() == 1);

  // hidden 24 -> 12 -> 6 -> 3: a fifth level fails on hidden (heads and ffn still divide)
  CHECK(level_shapes(map, top, {2, 1}, 4).back().sizes.at("hidden") == 3);
  auto msg = input_error([&] { level_shapes(map, top, {2, 1}, 5); });
  CHECK(contains(msg, "'hidden'"));
  CHECK(contains(msg, "size 3"));
  CHECK(contains(msg, "width factor 2"));
  CHECK(contains(msg, "level 5"));
  msg = input_error([&] { level_shapes(map, top, {16, 1}, 2); });
  CHECK(contains(msg, "'hidden'"));
  CHECK(contains(msg, "size 24"));
  CHECK(contains(msg, "width factor 16"));
  // heads merge whole: 3 heads of 4 cannot be halved even though 3·4 = 12 is even
  auto odd = optest::small_gpt(true);
  odd.heads = 3;
  odd.head_size = 4;
  msg = input_error([&] { level_shapes(gpt_param_map(odd), gpt_level_shape(odd), {2, 1}, 2); });
  CHECK(contains(msg, "'heads'"));
  CHECK(contains(msg, "size 12 (3 units of 4)"));
  // layers
  msg = input_error([&] { level_shapes(map, top, {1, 3}, 2); });
  CHECK(contains(msg, "layers 8"));
  CHECK(contains(msg, "depth factor 3"));
  // a space the map does not know, or a missing one
  auto extra = top;
  extra.sizes["experts"] = 4;
  CHECK(contains(input_error([&] { level_shapes(map, extra, {}, 2); }), "'experts'"));
  auto less = top;
  less.sizes.erase("ffn");
  CHECK(contains(input_error([&] { level_shapes(map, less, {}, 1); }), "'ffn'"));
  // bad factors and counts
  CHECK(contains(input_error([&] { level_shapes(map, top, {0, 2}, 2); }), "width factor"));
  CHECK(contains(input_error([&] { level_shapes(map, top, {}, 0); }), "count"));
  // the operators refuse an indivisible coalesce with the same message
  auto g = gpt(true);
  CHECK(contains(input_error([&] { coalesce(g.tensors, g.map, g.shape, {16, 1}); }), "width factor 16"));
}

// ---------------------------------------------------------------------------- YAML
TEST_CASE("YAML: the GPT maps round-trip through param_map_to_yaml", "[operators][param_map][yaml]") {
  for (bool tied : {true, false}) {
    auto cfg = optest::small_gpt(tied);
    cfg.head_size = 64;
    const auto map = gpt_param_map(cfg);
    const auto text = param_map_to_yaml(map);
    INFO(text);
    const auto back = param_map_from_yaml(YAML::Load(text), "<string>");
    CHECK(back == map);
    CHECK(back.params().size() == map.params().size());  // declaration order kept
    for (size_t i = 0; i < map.params().size(); ++i) CHECK(back.params()[i].pattern == map.params()[i].pattern);
    CHECK(param_map_to_yaml(back) == text);

    const std::string path = "vcycle_param_map_test_" + std::to_string(tied) + ".yaml";
    { std::ofstream(path) << text; }
    CHECK(param_map_load(path) == map);
    std::remove(path.c_str());
  }
}

TEST_CASE("YAML: a hand-written map equals the builder's", "[operators][param_map][yaml]") {
  const char* text = R"(
spaces:
  hidden: {unit: 1}
  heads: {unit: 64}
params:
  tok_emb.weight: {axes: [null, {space: hidden, role: out}]}
  "blocks.{layer}.attn.qkv.weight":
    axes:
      - {space: heads, role: out, chunks: 3}
      - {space: hidden, role: in}
  blocks.{layer}.ln1.weight: {axes: [{space: hidden, role: out}]}
  step: {axes: []}
)";
  ParamMap want;
  want.space("hidden").space("heads", 64);
  want.param("tok_emb.weight", {axis_none(), axis_out("hidden")})
      .param("blocks.{layer}.attn.qkv.weight", {axis_out("heads", 3), axis_in("hidden")})
      .param("blocks.{layer}.ln1.weight", {axis_out("hidden")})
      .param("step", {});
  CHECK(param_map_from_yaml(YAML::Load(text), "map.yaml") == want);
  // nested under another key, the key path carries the prefix
  const auto nested = YAML::Load(std::string("model:\n  param_map:\n    spaces: {hidden: {unit: 1}}\n    params: {}\n"));
  CHECK(param_map_from_yaml(nested["model"]["param_map"], "run.yaml", "model.param_map").spaces().size() == 1);
}

TEST_CASE("YAML: errors are ConfigErrors naming the key path", "[operators][param_map][yaml]") {
  auto key_of = [](const std::string& text) -> std::string {
    try {
      param_map_from_yaml(YAML::Load(text), "map.yaml", "model.param_map");
    } catch (const ConfigError& e) {
      INFO(e.what());
      CHECK(contains(e.what(), "map.yaml:"));  // file and line
      return e.key_path;
    }
    return "<no error>";
  };
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {w: {axes: [{space: h, role: sideways}]}}\n") ==
        "model.param_map.params[\"w\"].axes[0].role");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {w: {axes: [{space: q, role: in}]}}\n") ==
        "model.param_map.params[\"w\"].axes[0].space");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {w: {axes: [{space: h, role: in, chunks: 0}]}}\n") ==
        "model.param_map.params[\"w\"].axes[0].chunks");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {w: {axes: [{space: h, role: in, chunk: 3}]}}\n") ==
        "model.param_map.params[\"w\"].axes[0].chunk");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {w: {axis: []}}\n") == "model.param_map.params[\"w\"].axis");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {w: {}}\n") == "model.param_map.params[\"w\"].axes");
  CHECK(key_of("spaces: {h: {unit: x}}\nparams: {}\n") == "model.param_map.spaces.h.unit");
  CHECK(key_of("spaces: {h: {unit: 0}}\nparams: {}\n") == "model.param_map.spaces.h");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {\"b.{layer}.{layer}\": {axes: []}}\n") ==
        "model.param_map.params[\"b.{layer}.{layer}\"]");
  CHECK(key_of("spaces: {h: {unit: 1}}\n") == "model.param_map.params");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {}\nextra: 1\n") == "model.param_map.extra");
  CHECK(key_of("spaces: {h: {unit: 1}}\nparams: {w: {axes: [{role: in}]}}\n") ==
        "model.param_map.params[\"w\"].axes[0].space");
  // unreadable files are ConfigErrors too
  CHECK(contains(input_error([] { param_map_load("/nonexistent/map.yaml"); }), "/nonexistent/map.yaml"));
}
