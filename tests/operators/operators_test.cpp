// Operators on whole GPT models: exact round trip, agreement with the spec's P matrices, width
// function preservation of a trained model, interpolation, and the no-autograd contract.
#include <cmath>
#include <set>
#include <sstream>

#include "op_test_util.h"

using namespace vcycle;
using optest::grow;
using optest::input_error;

namespace {

std::string describe(const CoalesceFactors& f, bool tied) {
  std::ostringstream out;
  out << (tied ? "tied" : "untied") << " width " << f.width << " (" << to_string(f.width_pairing) << ") depth "
      << f.depth << " (" << to_string(f.depth_pairing) << ")";
  return out.str();
}

std::vector<CoalesceFactors> all_factors(std::vector<std::pair<int64_t, int64_t>> wd) {
  std::vector<CoalesceFactors> out;
  for (auto [w, d] : wd) {
    for (auto wp : {Pairing::halves, Pairing::neighbors}) {
      for (auto dp : {Pairing::halves, Pairing::neighbors}) out.push_back({w, d, wp, dp});
    }
  }
  return out;
}

// ---- the spec's dense definition (§2), as a reference for the gather implementation ----
// P (m/k × m units) expanded to elements: kron(I_chunks, kron(P, I_unit)).
torch::Tensor dense_p(int64_t m, int64_t k, int64_t unit, int64_t chunks, Pairing p) {
  auto P = torch::zeros({m / k, m}, torch::kDouble);
  for (int64_t j = 0; j < m; ++j) P[p == Pairing::halves ? j % (m / k) : j / k][j] = 1.0;
  return torch::kron(torch::eye(chunks, torch::kDouble), torch::kron(P, torch::eye(unit, torch::kDouble)));
}

// Applies M (rows × cols) to axis `a` of x (size cols there).
torch::Tensor apply_axis(const torch::Tensor& x, int64_t a, const torch::Tensor& M) {
  return torch::matmul(x.movedim(a, -1), M.t()).movedim(-1, a);
}

TensorMap reference_coalesce(const TensorMap& big, const ParamMap& map, const LevelShape& large,
                             const CoalesceFactors& f) {
  TensorMap width;
  for (const auto& [name, t] : big) {
    const ParamSpec* spec = nullptr;
    for (const auto& s : map.params()) {
      if (s.match(name)) spec = &s;
    }
    REQUIRE(spec != nullptr);
    auto x = t.to(torch::kDouble);
    for (size_t a = 0; a < spec->axes.size(); ++a) {
      if (!spec->axes[a]) continue;
      const auto& ax = *spec->axes[a];
      const int64_t unit = map.unit(ax.space), m = large.size(ax.space) / unit;
      auto P = dense_p(m, f.width, unit, ax.chunks, f.width_pairing);
      x = apply_axis(x, static_cast<int64_t>(a), ax.role == AxisRole::out ? P / double(f.width) : P);  // A or S
    }
    width[name] = x;
  }
  TensorMap out;
  const int64_t small_layers = large.layers / f.depth;
  for (const auto& s : map.params()) {
    if (!s.layered()) {
      out[s.pattern] = width.at(s.pattern);
      continue;
    }
    for (int64_t j = 0; j < small_layers; ++j) {
      torch::Tensor sum;
      for (int64_t g = 0; g < f.depth; ++g) {
        const int64_t l = f.depth_pairing == Pairing::halves ? j + g * small_layers : j * f.depth + g;
        sum = sum.defined() ? sum + width.at(s.name_for(l)) : width.at(s.name_for(l));
      }
      out[s.name_for(j)] = sum / double(f.depth);
    }
  }
  return out;
}

TensorMap reference_decoalesce(const TensorMap& small, const ParamMap& map, const LevelShape& large,
                               const CoalesceFactors& f) {
  const int64_t small_layers = large.layers / f.depth;
  TensorMap out;
  for (const auto& s : map.params()) {
    for (int64_t l = 0; l < (s.layered() ? large.layers : 1); ++l) {
      const int64_t j = f.depth_pairing == Pairing::halves ? l % small_layers : l / f.depth;
      auto x = small.at(s.layered() ? s.name_for(j) : s.pattern).to(torch::kDouble);
      for (size_t a = 0; a < s.axes.size(); ++a) {
        if (!s.axes[a]) continue;
        const auto& ax = *s.axes[a];
        const int64_t unit = map.unit(ax.space), m = large.size(ax.space) / unit;
        auto Pt = dense_p(m, f.width, unit, ax.chunks, f.width_pairing).t();
        x = apply_axis(x, static_cast<int64_t>(a), ax.role == AxisRole::out ? Pt : Pt / double(f.width));  // copy, split
      }
      out[s.layered() ? s.name_for(l) : s.pattern] = x;
    }
  }
  return out;
}

// Trains a GPT a few dozen AdamW steps on fixed random tokens; returns it.
GPT trained_gpt(const GPTConfig& cfg, uint64_t seed) {
  torch::manual_seed(seed);
  GPT model(cfg);
  auto x = torch::randint(0, cfg.vocab, {8, cfg.context}, torch::kLong);
  auto y = torch::randint(0, cfg.vocab, {8, cfg.context}, torch::kLong);
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
  return model;
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace

TEST_CASE("coalesce(decoalesce(θ)) == θ bitwise for GPT", "[operators][roundtrip]") {
  torch::manual_seed(10);
  for (bool tied : {true, false}) {
    const auto cfg = optest::small_gpt(tied);
    const auto map = gpt_param_map(cfg);
    const auto theta = optest::random_gpt_tensors(cfg);
    for (const auto& f : all_factors({{2, 1}, {1, 2}, {2, 2}, {4, 1}, {1, 4}, {4, 4}, {4, 2}})) {
      INFO(describe(f, tied));
      const auto large = grow(gpt_level_shape(cfg), f.width, f.depth);
      const auto big = decoalesce(theta, map, large, f);
      param_map_validate(map, big, large);  // the right names and shapes for the large model
      CHECK(big.size() == theta.size() + 12 * (f.depth - 1) * cfg.layers);  // 12 tensors per block
      std::string diff;
      const bool same = optest::bitwise_equal(coalesce(big, map, large, f), theta, &diff);
      INFO("first tensor that differs: " << diff);
      CHECK(same);
      // and the large model loads into a GPT of the matching config
      GPT model(gpt_config_for_shape(cfg, large));
      load_module_tensors(*model, big);
    }
  }
}

TEST_CASE("round trip with a factor that is not a power of two is within 1 ulp", "[operators][roundtrip]") {
  torch::manual_seed(11);
  auto cfg = optest::small_gpt(true);
  cfg.heads = 3;  // heads size 12 = 3 heads; hidden 8, ffn 16: all grow by 3
  const auto map = gpt_param_map(cfg);
  const auto theta = optest::random_gpt_tensors(cfg);
  for (const auto& f : all_factors({{3, 3}})) {
    INFO(describe(f, true));
    const auto large = grow(gpt_level_shape(cfg), 3, 3);
    const auto back = coalesce(decoalesce(theta, map, large, f), map, large, f);
    for (const auto& [name, t] : theta) {
      INFO(name);
      // one ulp of each entry: the distance to the next float away from zero
      const auto ulp = (torch::nextafter(t, t.sign() * INFINITY) - t).abs();
      const auto err = (back.at(name) - t).abs();
      INFO("max error in ulp: " << (err / ulp).max().item<double>());
      CHECK((err <= ulp).all().item<bool>());
    }
  }
}

TEST_CASE("gather operators agree with the spec's dense P matrices", "[operators][reference]") {
  torch::manual_seed(12);
  for (bool tied : {true, false}) {
    auto cfg = optest::small_gpt(tied);
    cfg.layers = 4;
    cfg.heads = 4;
    const auto map = gpt_param_map(cfg);
    const auto large = gpt_level_shape(cfg);
    const auto big = optest::random_gpt_tensors(cfg);
    for (const auto& f : all_factors({{2, 2}, {4, 4}, {2, 1}})) {
      INFO(describe(f, tied));
      const auto got = coalesce(big, map, large, f);
      const auto want = reference_coalesce(big, map, large, f);
      REQUIRE(got.size() == want.size());
      for (const auto& [name, w] : want) {
        INFO(name);
        REQUIRE(got.count(name) == 1);
        CHECK(torch::allclose(got.at(name).to(torch::kDouble), w, 1e-5, 1e-6));
      }
      const auto small = optest::random_gpt_tensors(gpt_config_for_shape(cfg, coalesce_shape(map, large, f)));
      const auto dgot = decoalesce(small, map, large, f);
      const auto dwant = reference_decoalesce(small, map, large, f);
      REQUIRE(dgot.size() == dwant.size());
      for (const auto& [name, w] : dwant) {
        INFO(name);
        REQUIRE(dgot.count(name) == 1);
        CHECK(torch::allclose(dgot.at(name).to(torch::kDouble), w, 1e-6, 1e-7));
      }
    }
  }
}

TEST_CASE("width de-coalescing a trained GPT preserves its logits", "[operators][function]") {
  for (bool tied : {true, false}) {
    GPTConfig cfg;
    cfg.layers = 2; cfg.hidden = 16; cfg.heads = 2; cfg.head_size = 8; cfg.ffn = 32; cfg.context = 16; cfg.vocab = 40;
    cfg.tied_embeddings = tied;
    auto small = trained_gpt(cfg, tied ? 20 : 21);
    const auto map = gpt_param_map(cfg);
    const auto theta = module_tensors(*small);
    auto idx = torch::randint(0, cfg.vocab, {3, cfg.context}, torch::kLong);
    torch::NoGradGuard no_grad;
    const auto want = small->forward(idx);
    for (int64_t k : {2, 4}) {
      for (auto p : {Pairing::halves, Pairing::neighbors}) {
        INFO((tied ? "tied" : "untied") << " k=" << k << " " << to_string(p));
        const CoalesceFactors f{k, 1, p, Pairing::halves};
        const auto large = grow(gpt_level_shape(cfg), k, 1);
        GPT big(gpt_config_for_shape(cfg, large));
        CHECK(big->cfg.heads == cfg.heads * k);
        load_module_tensors(*big, decoalesce(theta, map, large, f));
        const auto got = big->forward(idx);
        const double err = max_abs(got - want), scale = max_abs(want);
        INFO("max |Δlogit| = " << err << ", max |logit| = " << scale);
        CHECK(err <= 1e-4 * scale);
      }
    }
    if (tied) {
      // Control: giving ln_f the out role (as the untied map does) makes the tied logits k times too
      // large, so this test would catch a map without the §4 fix.
      const auto wrong = gpt_param_map([&] { auto c = cfg; c.tied_embeddings = false; return c; }());
      ParamMap wrong_tied;
      for (const auto& [s, u] : wrong.spaces()) wrong_tied.space(s, u);
      for (const auto& spec : wrong.params()) {
        if (spec.pattern != "head.weight") wrong_tied.param(spec.pattern, spec.axes);
      }
      const auto large = grow(gpt_level_shape(cfg), 2, 1);
      GPT big(gpt_config_for_shape(cfg, large));
      load_module_tensors(*big, decoalesce(theta, wrong_tied, large, {2, 1}));
      CHECK(max_abs(big->forward(idx) - want) > 1e-2 * max_abs(want));
    }
  }
}

TEST_CASE("coalesced GPT tensors load into the smaller GPT", "[operators]") {
  torch::manual_seed(13);
  auto cfg = optest::small_gpt(false);
  cfg.layers = 4;
  cfg.heads = 4;
  GPT big(cfg);
  const auto map = gpt_param_map(cfg);
  const auto shapes = level_shapes(map, gpt_level_shape(cfg), {}, 3);
  REQUIRE(shapes.size() == 3);
  CHECK((shapes[1] == LevelShape{{{"hidden", 4}, {"heads", 8}, {"ffn", 8}}, 2}));
  CHECK((shapes[2] == LevelShape{{{"hidden", 2}, {"heads", 4}, {"ffn", 4}}, 1}));
  auto level2 = coalesce(module_tensors(*big), map, shapes[0], {});
  auto level3 = coalesce(level2, map, shapes[1], {});
  GPT small(gpt_config_for_shape(cfg, shapes[2]));
  CHECK(small->cfg.heads == 1);
  load_module_tensors(*small, level3);
  auto logits = small->forward(torch::randint(0, cfg.vocab, {2, 5}, torch::kLong));
  CHECK(logits.sizes() == torch::IntArrayRef({2, 5, cfg.vocab}));
}

TEST_CASE("operators return fresh tensors without autograd history", "[operators]") {
  torch::manual_seed(14);
  const auto cfg = optest::small_gpt(true);
  GPT model(cfg);
  const auto map = gpt_param_map(cfg);
  // Parameters straight from the module: they require grad.
  TensorMap params;
  for (const auto& item : model->named_parameters()) params[item.key()] = item.value();
  REQUIRE(params.at("tok_emb.weight").requires_grad());
  const auto shape = gpt_level_shape(cfg);
  for (const CoalesceFactors f : {CoalesceFactors{1, 1}, CoalesceFactors{2, 1}, CoalesceFactors{1, 2}}) {
    const auto out = coalesce(params, map, shape, f);
    const auto back = decoalesce(out, map, shape, f);
    const auto mixed = interpolate(params, back, 0.5, InterpolationMode::fixed);
    for (const TensorMap* m : {&out, &back, &mixed}) {
      for (const auto& [name, t] : *m) {
        INFO(name << " width " << f.width << " depth " << f.depth);
        CHECK_FALSE(t.requires_grad());
        CHECK_FALSE(t.grad_fn());
        CHECK(t.is_contiguous());
        for (const auto& [pname, p] : params) CHECK(t.data_ptr() != p.data_ptr());
        for (const auto& [oname, o] : out) {
          if (m != &out) CHECK(t.data_ptr() != o.data_ptr());
        }
      }
    }
    // distinct outputs never share storage (de-coalesced depth copies are separate tensors)
    std::set<const void*> ptrs;
    for (const auto& [name, t] : back) CHECK(ptrs.insert(t.data_ptr()).second);
  }
}

TEST_CASE("operators keep the dtype and accept float64", "[operators]") {
  torch::manual_seed(15);
  const auto cfg = optest::small_gpt(false);
  const auto map = gpt_param_map(cfg);
  const auto theta = optest::random_gpt_tensors(cfg, torch::kDouble);
  const auto large = grow(gpt_level_shape(cfg), 2, 2);
  const auto big = decoalesce(theta, map, large, {});
  for (const auto& [name, t] : big) CHECK(t.scalar_type() == torch::kDouble);
  CHECK(optest::bitwise_equal(coalesce(big, map, large, {}), theta));
}

TEST_CASE("operators run on CUDA when available", "[operators][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no CUDA device: skipped");
    return;
  }
  torch::manual_seed(16);
  const auto cfg = optest::small_gpt(true);
  const auto map = gpt_param_map(cfg);
  const auto cpu = optest::random_gpt_tensors(cfg);
  TensorMap gpu;
  for (const auto& [name, t] : cpu) gpu[name] = t.to(torch::kCUDA);
  const auto large = grow(gpt_level_shape(cfg), 2, 2);
  const auto big = decoalesce(gpu, map, large, {});
  for (const auto& [name, t] : big) CHECK(t.is_cuda());
  const auto back = coalesce(big, map, large, {});
  for (const auto& [name, t] : cpu) CHECK(torch::equal(back.at(name).cpu(), t));
  const auto big_cpu = decoalesce(cpu, map, large, {});
  for (const auto& [name, t] : big_cpu) CHECK(torch::equal(big.at(name).cpu(), t));
  const auto mixed = interpolate(big, big, 0.5, InterpolationMode::norm_matched);
  for (const auto& [name, t] : mixed) CHECK(t.is_cuda());
}

// ---------------------------------------------------------------------------- interpolation
TEST_CASE("interpolation blends by name", "[operators][interpolate]") {
  torch::manual_seed(17);
  const TensorMap pre{{"a", torch::randn({3, 4})}, {"b", torch::randn({5})}};
  const TensorMap deco{{"a", torch::randn({3, 4})}, {"b", torch::randn({5})}};
  CHECK(optest::bitwise_equal(interpolate(pre, deco, 0.0, InterpolationMode::fixed), pre));
  CHECK(optest::bitwise_equal(interpolate(pre, deco, 1.0, InterpolationMode::fixed), deco));
  const auto quarter = interpolate(pre, deco, 0.25, InterpolationMode::fixed);
  for (const auto& [name, p] : pre) {
    INFO(name);
    CHECK(torch::allclose(quarter.at(name), 0.75 * p + 0.25 * deco.at(name), 1e-6, 1e-7));
  }
  CHECK(input_error([&] { interpolate(pre, deco, 1.5, InterpolationMode::fixed); }).find("alpha") != std::string::npos);
  CHECK(input_error([&] { interpolate(pre, deco, -0.1, InterpolationMode::fixed); }).find("alpha") != std::string::npos);
  CHECK(input_error([&] { interpolate(pre, deco, std::nan(""), InterpolationMode::fixed); }).find("alpha") !=
        std::string::npos);
}

TEST_CASE("norm_matched interpolation rescales θ_deco to ‖θ_pre‖ first", "[operators][interpolate]") {
  torch::manual_seed(18);
  const TensorMap pre{{"a", torch::randn({6, 4})}, {"zero_deco", torch::randn({3})}, {"zero_pre", torch::zeros({3})}};
  const TensorMap deco{{"a", 5.0 * torch::randn({6, 4})}, {"zero_deco", torch::zeros({3})},
                       {"zero_pre", torch::randn({3})}};
  const auto one = interpolate(pre, deco, 1.0, InterpolationMode::norm_matched);
  const auto& a = one.at("a");
  CHECK(a.norm().item<double>() == Approx(pre.at("a").norm().item<double>()).epsilon(1e-5));
  CHECK(torch::allclose(a / a.norm(), deco.at("a") / deco.at("a").norm(), 1e-5, 1e-6));  // same direction
  // skipped when either norm is 0
  CHECK(torch::equal(one.at("zero_deco"), deco.at("zero_deco")));
  CHECK(torch::equal(one.at("zero_pre"), deco.at("zero_pre")));
  const auto half = interpolate(pre, deco, 0.5, InterpolationMode::norm_matched);
  const double ratio = pre.at("a").norm().item<double>() / deco.at("a").norm().item<double>();
  CHECK(torch::allclose(half.at("a"), 0.5 * pre.at("a") + 0.5 * ratio * deco.at("a"), 1e-5, 1e-6));
  CHECK(torch::allclose(half.at("zero_deco"), 0.5 * pre.at("zero_deco")));
  CHECK(optest::bitwise_equal(interpolate(pre, deco, 0.0, InterpolationMode::norm_matched), pre));
  // fixed mode does not rescale
  CHECK_FALSE(torch::allclose(interpolate(pre, deco, 1.0, InterpolationMode::fixed).at("a"), a));
}

TEST_CASE("interpolation rejects missing, extra and mis-shaped tensors by name", "[operators][interpolate]") {
  const TensorMap pre{{"blocks.0.w", torch::ones({2, 2})}, {"emb", torch::ones({3})}};
  TensorMap missing{{"blocks.0.w", torch::ones({2, 2})}};
  auto msg = input_error([&] { interpolate(pre, missing, 0.5, InterpolationMode::fixed); });
  CHECK(msg.find("'emb'") != std::string::npos);
  TensorMap extra = pre;
  extra["blocks.1.w"] = torch::ones({2, 2});
  msg = input_error([&] { interpolate(pre, extra, 0.5, InterpolationMode::fixed); });
  CHECK(msg.find("'blocks.1.w'") != std::string::npos);
  TensorMap shaped = pre;
  shaped["blocks.0.w"] = torch::ones({4});
  msg = input_error([&] { interpolate(pre, shaped, 0.5, InterpolationMode::norm_matched); });
  CHECK(msg.find("'blocks.0.w'") != std::string::npos);
  CHECK(msg.find("shape") != std::string::npos);
  TensorMap typed = pre;
  typed["emb"] = torch::ones({3}, torch::kDouble);
  msg = input_error([&] { interpolate(pre, typed, 0.5, InterpolationMode::fixed); });
  CHECK(msg.find("'emb'") != std::string::npos);
}

TEST_CASE("pairing and interpolation mode names parse, unknown names list the valid ones", "[operators]") {
  CHECK(parse_pairing("halves") == Pairing::halves);
  CHECK(parse_pairing("neighbors") == Pairing::neighbors);
  CHECK(parse_interpolation_mode("fixed") == InterpolationMode::fixed);
  CHECK(parse_interpolation_mode("norm_matched") == InterpolationMode::norm_matched);
  const auto p = input_error([] { parse_pairing("neighbours"); });
  CHECK(p.find("neighbours") != std::string::npos);
  CHECK(p.find("halves, neighbors") != std::string::npos);
  const auto m = input_error([] { parse_interpolation_mode("adaptive"); });
  CHECK(m.find("adaptive") != std::string::npos);
  CHECK(m.find("fixed, norm_matched") != std::string::npos);
  for (auto x : {Pairing::halves, Pairing::neighbors}) CHECK(parse_pairing(to_string(x)) == x);
  for (auto x : {InterpolationMode::fixed, InterpolationMode::norm_matched}) {
    CHECK(parse_interpolation_mode(to_string(x)) == x);
  }
}

TEST_CASE("optimizer state of a GPT round-trips through coalesce_state / decoalesce_state", "[operators][state]") {
  torch::manual_seed(19);
  const auto cfg = optest::small_gpt(true);
  const auto map = gpt_param_map(cfg);
  const auto m1 = optest::random_gpt_tensors(cfg);
  TensorMap m2;
  for (const auto& [name, t] : optest::random_gpt_tensors(cfg)) m2[name] = t.square();
  const auto large = grow(gpt_level_shape(cfg), 2, 2);
  const CoalesceFactors f{};
  CHECK(optest::bitwise_equal(coalesce_state(decoalesce_state(m1, map, large, f, MomentKind::first), map, large, f,
                                             MomentKind::first),
                              m1));
  const auto big2 = decoalesce_state(m2, map, large, f, MomentKind::second);
  CHECK(optest::bitwise_equal(coalesce_state(big2, map, large, f, MomentKind::second), m2));
  // second moments are copied, never split: the large state holds only values of the small one
  CHECK(torch::equal(std::get<0>(big2.at("ln_f.weight").view({2, -1}).max(0)), m2.at("ln_f.weight")));
  // first moments follow the parameter, equal to decoalesce
  CHECK(optest::bitwise_equal(decoalesce_state(m1, map, large, f, MomentKind::first), decoalesce(m1, map, large, f)));
  // a missing layer in the state is still an error
  TensorMap partial = m1;
  partial.erase("blocks.1.ln1.weight");
  CHECK(input_error([&] { coalesce_state(partial, map, gpt_level_shape(cfg), {1, 2}, MomentKind::first); })
            .find("blocks.1.ln1.weight") != std::string::npos);
}
