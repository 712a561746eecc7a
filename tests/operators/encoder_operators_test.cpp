// Operators on the encoder families (BERT, ViT): coalesce(decoalesce(θ)) == θ bitwise for
// power-of-two factors, and width de-coalescing preserves the model's outputs (spec operators.md §3,
// §4) — for BERT through the tied MLM decoder, whose feeding norm takes the in role.
#include <functional>
#include <sstream>

#include "vcycle/models/bert/param_map.h"
#include "vcycle/models/bert/bert.h"
#include "vcycle/models/vit/vit.h"
#include "vcycle/models/vit/param_map.h"

#include "op_test_util.h"  // includes Catch, last

using namespace vcycle;
using optest::grow;

namespace {

BertConfig small_bert() {
  BertConfig c;
  c.layers = 2; c.hidden = 8; c.heads = 2; c.head_size = 4; c.ffn = 16; c.context = 6; c.vocab = 13; c.segments = 2;
  return c;
}

ViTConfig small_vit() {
  ViTConfig c;
  c.image_size = 8; c.patch = 4; c.channels = 1; c.classes = 5;
  c.layers = 2; c.hidden = 8; c.heads = 2; c.head_size = 4; c.ffn = 16;
  return c;
}

// Every tensor random (gains and biases too), so no tensor is trivially constant.
TensorMap random_tensors(const torch::nn::Module& model) {
  TensorMap out;
  for (const auto& [name, t] : module_tensors(model)) out[name] = torch::randn(t.sizes());
  return out;
}

// A model with every parameter drawn at a scale where it computes a non-trivial function: weights
// N(0, 0.3²), norm gains 1 + N(0, 0.1²), biases N(0, 0.1²). Random weights of this size exercise
// every path (attention mixing, GELU curvature, the norms) as a trained model's would.
void randomize(torch::nn::Module& model) {
  torch::NoGradGuard ng;
  for (auto& item : model.named_parameters()) {
    auto& p = item.value();
    const std::string& name = item.key();
    const bool gain = p.dim() == 1 && name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
    if (gain) p.copy_(1 + 0.1 * torch::randn(p.sizes()));
    else if (p.dim() == 1) p.copy_(0.1 * torch::randn(p.sizes()));
    else p.copy_(0.3 * torch::randn(p.sizes()));
  }
}

std::vector<CoalesceFactors> factor_grid() {
  std::vector<CoalesceFactors> out;
  for (auto [w, d] : std::vector<std::pair<int64_t, int64_t>>{{2, 1}, {1, 2}, {2, 2}, {4, 4}, {4, 2}}) {
    for (auto wp : {Pairing::halves, Pairing::neighbors}) {
      for (auto dp : {Pairing::halves, Pairing::neighbors}) out.push_back({w, d, wp, dp});
    }
  }
  return out;
}

std::string describe(const CoalesceFactors& f) {
  std::ostringstream s;
  s << "width " << f.width << " (" << to_string(f.width_pairing) << ") depth " << f.depth << " ("
    << to_string(f.depth_pairing) << ")";
  return s.str();
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace

TEST_CASE("coalesce(decoalesce(θ)) == θ bitwise for BERT and ViT", "[operators][roundtrip][bert][vit]") {
  torch::manual_seed(30);
  const BertConfig bc = small_bert();
  const ViTConfig vc = small_vit();
  struct Family {
    std::string name;
    ParamMap map;
    LevelShape shape;
    TensorMap theta;
    std::function<void(const LevelShape&, const TensorMap&)> load;  // loads into the model of that shape
  };
  std::vector<Family> families;
  families.push_back({"bert", bert_param_map(bc), bert_level_shape(bc), random_tensors(*Bert(bc)),
                      [&](const LevelShape& s, const TensorMap& t) { Bert m(bert_config_for_shape(bc, s)); load_module_tensors(*m, t); }});
  families.push_back({"vit", vit_param_map(vc), vit_level_shape(vc), random_tensors(*ViT(vc)),
                      [&](const LevelShape& s, const TensorMap& t) { ViT m(vit_config_for_shape(vc, s)); load_module_tensors(*m, t); }});
  for (const auto& fam : families) {
    param_map_validate(fam.map, fam.theta, fam.shape);  // every parameter and buffer is covered
    for (const auto& f : factor_grid()) {
      INFO(fam.name << " " << describe(f));
      const auto large = grow(fam.shape, f.width, f.depth);
      const auto big = decoalesce(fam.theta, fam.map, large, f);
      param_map_validate(fam.map, big, large);
      fam.load(large, big);  // the names and shapes of the large model
      std::string diff;
      const bool same = optest::bitwise_equal(coalesce(big, fam.map, large, f), fam.theta, &diff);
      INFO("first tensor that differs: " << diff);
      CHECK(same);
    }
  }
}

TEST_CASE("width de-coalescing BERT preserves its MLM logits (tied decoder, mlm.ln in role)", "[operators][function][bert]") {
  torch::manual_seed(31);
  BertConfig cfg = small_bert();
  cfg.hidden = 16; cfg.ffn = 32; cfg.head_size = 8; cfg.context = 12; cfg.vocab = 41;
  Bert small(cfg);
  randomize(*small);
  small->eval();
  const auto map = bert_param_map(cfg);
  const auto theta = module_tensors(*small);
  const auto idx = torch::randint(0, cfg.vocab, {3, cfg.context}, torch::kLong);
  const auto seg = torch::randint(0, cfg.segments, {3, cfg.context}, torch::kLong);
  torch::NoGradGuard ng;
  const auto want = small->forward(idx, seg);
  for (int64_t k : {2, 4}) {
    for (auto p : {Pairing::halves, Pairing::neighbors}) {
      INFO("k=" << k << " " << to_string(p));
      const auto large = grow(bert_level_shape(cfg), k, 1);
      Bert big(bert_config_for_shape(cfg, large));
      big->eval();
      load_module_tensors(*big, decoalesce(theta, map, large, {k, 1, p, Pairing::halves}));
      const auto got = big->forward(idx, seg);
      const double err = max_abs(got - want), scale = max_abs(want);
      INFO("max |Δlogit| = " << err << ", max |logit| = " << scale);
      CHECK(err <= 1e-4 * scale);
    }
  }
  // Control: with mlm.ln in the out role the tied logits come out wrong, so the test above would
  // catch a map without the §4 fix.
  ParamMap wrong;
  for (const auto& [s, u] : map.spaces()) wrong.space(s, u);
  for (const auto& spec : map.params()) {
    const bool head_norm = spec.pattern == "mlm.ln.weight" || spec.pattern == "mlm.ln.bias";
    wrong.param(spec.pattern, head_norm ? std::vector<AxisSpec>{axis_out("hidden")} : spec.axes);
  }
  const auto large = grow(bert_level_shape(cfg), 2, 1);
  Bert big(bert_config_for_shape(cfg, large));
  load_module_tensors(*big, decoalesce(theta, wrong, large, {2, 1}));
  CHECK(max_abs(big->forward(idx, seg) - want) > 1e-2 * max_abs(want));
}

TEST_CASE("width de-coalescing ViT preserves its class logits", "[operators][function][vit]") {
  torch::manual_seed(32);
  ViTConfig cfg = small_vit();
  cfg.hidden = 16; cfg.ffn = 32; cfg.head_size = 8;
  ViT small(cfg);
  randomize(*small);
  small->eval();
  const auto map = vit_param_map(cfg);
  const auto theta = module_tensors(*small);
  const auto images = torch::randn({5, cfg.channels, cfg.image_size, cfg.image_size});
  torch::NoGradGuard ng;
  const auto want = small->forward(images);
  for (int64_t k : {2, 4}) {
    for (auto p : {Pairing::halves, Pairing::neighbors}) {
      INFO("k=" << k << " " << to_string(p));
      const auto large = grow(vit_level_shape(cfg), k, 1);
      ViT big(vit_config_for_shape(cfg, large));
      big->eval();
      load_module_tensors(*big, decoalesce(theta, map, large, {k, 1, p, Pairing::halves}));
      const auto got = big->forward(images);
      const double err = max_abs(got - want), scale = max_abs(want);
      INFO("max |Δlogit| = " << err << ", max |logit| = " << scale);
      CHECK(err <= 1e-4 * scale);
    }
  }
}
