// Optimizer registry: names, YAML options and their errors, parameter groups, learning rate,
// state bytes, and save/load through byte strings.
#include <functional>
#include <string>

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include "vcycle/core/errors.h"
#include "vcycle/optim.h"
// Last: glog (via c10) defines CHECK too, and Catch's must win.
#include "optim/helpers.h"

using namespace optim_test;
using vcycle::ConfigError;
using vcycle::optim::make_optimizer;

namespace {

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

// A few GPT-like parameters: two matrices that decay, a bias and a norm weight that do not.
Named gpt_like() {
  torch::manual_seed(3);
  return {{"tok_emb.weight", torch::randn({11, 4}).set_requires_grad(true)},
          {"pos_emb.weight", torch::randn({6, 4}).set_requires_grad(true)},
          {"blocks.0.ln1.weight", torch::ones({4}).set_requires_grad(true)},
          {"blocks.0.attn.qkv.weight", torch::randn({12, 4}).set_requires_grad(true)},
          {"blocks.0.attn.qkv.bias", torch::zeros({12}).set_requires_grad(true)}};
}

// The configuration a trainer would hand over: `optimizers.<name>` of a YAML document.
YAML::Node options_of(const std::string& yaml, const std::string& name) { return YAML::Load(yaml)["optimizers"][name]; }

// The ConfigError thrown by f (fails the test when none is thrown).
ConfigError config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("no ConfigError thrown");
  return ConfigError("", "", "");
}

std::vector<torch::Tensor> params_of(const torch::optim::OptimizerParamGroup& g) { return g.params(); }

bool same(const torch::Tensor& a, const torch::Tensor& b) { return a.unsafeGetTensorImpl() == b.unsafeGetTensorImpl(); }

}  // namespace

TEST_CASE("registry: the four names, and an unknown name lists them", "[optim][registry]") {
  CHECK(vcycle::optim::optimizer_names() == std::vector<std::string>{"adamw", "came", "lamb", "adafactor"});
  const auto e = config_error([] { make_optimizer("adam", gpt_like(), 1e-3, YAML::Node(), "run.yaml"); });
  CHECK(e.key_path == "optimizer");
  CHECK_THAT(e.what(), Catch::Matchers::Contains("run.yaml") && Catch::Matchers::Contains("'adam'") &&
                           Catch::Matchers::Contains("adamw, came, lamb, adafactor"));
}

TEST_CASE("registry: each name builds its optimizer with all defaults from a null node", "[optim][registry]") {
  auto named = gpt_like();
  CHECK(dynamic_cast<torch::optim::AdamW*>(make_optimizer("adamw", named, 1e-3, YAML::Node(), "x").get()));
  CHECK(dynamic_cast<vcycle::optim::CAME*>(make_optimizer("came", named, 1e-3, YAML::Node(), "x").get()));
  CHECK(dynamic_cast<vcycle::optim::LAMB*>(make_optimizer("lamb", named, 1e-3, YAML::Node(), "x").get()));
  CHECK(dynamic_cast<vcycle::optim::Adafactor*>(make_optimizer("adafactor", named, 1e-3, YAML::Node(), "x").get()));
  // an absent key of a loaded document is an undefined node: also all defaults
  auto came = make_optimizer("came", named, 5e-4, options_of("optimizers: {}\n", "came"), "x");
  const auto& o = static_cast<const vcycle::optim::CAMEOptions&>(came->param_groups()[0].options());
  CHECK(o.lr() == 5e-4);
  CHECK(o.betas() == std::make_tuple(0.9, 0.999, 0.9999));
  CHECK(o.eps() == std::make_tuple(1e-30, 1e-16));
  CHECK(o.weight_decay() == 0.0);
}

TEST_CASE("registry: YAML options reach every optimizer", "[optim][registry]") {
  auto named = gpt_like();
  const std::string yaml = R"(optimizers:
  adamw: {betas: [0.8, 0.95], eps: 1.0e-7, weight_decay: 0.1}
  came: {betas: [0.8, 0.9, 0.99], eps: [1.0e-20, 1.0e-10], clip_threshold: 2, weight_decay: 0.05}
  lamb: {betas: [0.85, 0.98], eps: 1.0e-5, weight_decay: 0.02, bias_correction: false, trust_ratio: true}
  adafactor: {eps: [1.0e-29, 2.0e-3], clip_threshold: 0.5, decay_rate: -0.5, beta1: 0.9, weight_decay: 0.01,
              scale_parameter: false, relative_step: false, warmup_init: false}
)";
  {
    auto opt = make_optimizer("adamw", named, 2e-3, options_of(yaml, "adamw"), "x");
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(opt->param_groups()[0].options());
    CHECK(o.lr() == 2e-3);
    CHECK(o.betas() == std::make_tuple(0.8, 0.95));
    CHECK(o.eps() == 1e-7);
    CHECK(o.weight_decay() == 0.1);
  }
  {
    auto opt = make_optimizer("came", named, 2e-3, options_of(yaml, "came"), "x");
    const auto& o = static_cast<const vcycle::optim::CAMEOptions&>(opt->param_groups()[0].options());
    CHECK(o.betas() == std::make_tuple(0.8, 0.9, 0.99));
    CHECK(o.eps() == std::make_tuple(1e-20, 1e-10));
    CHECK(o.clip_threshold() == 2.0);
    CHECK(o.weight_decay() == 0.05);
  }
  {
    auto opt = make_optimizer("lamb", named, 2e-3, options_of(yaml, "lamb"), "x");
    const auto& o = static_cast<const vcycle::optim::LAMBOptions&>(opt->param_groups()[0].options());
    CHECK(o.betas() == std::make_tuple(0.85, 0.98));
    CHECK(o.eps() == 1e-5);
    CHECK(o.weight_decay() == 0.02);
    CHECK_FALSE(o.bias_correction());
    CHECK(o.trust_ratio());
  }
  {
    auto opt = make_optimizer("adafactor", named, 2e-3, options_of(yaml, "adafactor"), "x");
    const auto& o = static_cast<const vcycle::optim::AdafactorOptions&>(opt->param_groups()[0].options());
    CHECK(o.lr() == 2e-3);  // relative_step is false: the lr is used
    CHECK(o.eps() == std::make_tuple(1e-29, 2e-3));
    CHECK(o.clip_threshold() == 0.5);
    CHECK(o.decay_rate() == -0.5);
    CHECK(o.beta1() == 0.9);
    CHECK(o.weight_decay() == 0.01);
    CHECK_FALSE(o.scale_parameter());
    CHECK_FALSE(o.relative_step());
  }
}

TEST_CASE("registry: dim < 2 and no_decay names form a second group without decay", "[optim][registry]") {
  auto named = gpt_like();
  const std::string yaml = "optimizers:\n  lamb:\n    weight_decay: 0.3\n    no_decay: [pos_emb]\n";
  auto opt = make_optimizer("lamb", named, 1e-3, options_of(yaml, "lamb"), "x");
  REQUIRE(opt->param_groups().size() == 2);
  const auto decay = params_of(opt->param_groups()[0]), no_decay = params_of(opt->param_groups()[1]);
  REQUIRE(decay.size() == 2);
  CHECK(same(decay[0], named[0].second));  // tok_emb.weight
  CHECK(same(decay[1], named[3].second));  // qkv.weight
  REQUIRE(no_decay.size() == 3);
  CHECK(same(no_decay[0], named[1].second));  // pos_emb.weight, by pattern
  CHECK(same(no_decay[1], named[2].second));  // ln1.weight, 1-D
  CHECK(same(no_decay[2], named[4].second));  // qkv.bias, 1-D
  const auto& o0 = static_cast<const vcycle::optim::LAMBOptions&>(opt->param_groups()[0].options());
  const auto& o1 = static_cast<const vcycle::optim::LAMBOptions&>(opt->param_groups()[1].options());
  CHECK(o0.weight_decay() == 0.3);
  CHECK(o0.trust_ratio());
  CHECK(o1.weight_decay() == 0.0);
  CHECK_FALSE(o1.trust_ratio());
  CHECK(o1.lr() == 1e-3);

  for (const std::string name : {"adamw", "came", "adafactor"}) {
    INFO(name);
    auto o = make_optimizer(name, named, 1e-3, YAML::Load("{weight_decay: 0.2}"), "x");
    REQUIRE(o->param_groups().size() == 2);
    CHECK(params_of(o->param_groups()[1]).size() == 2);  // the two vectors
    for (size_t g = 0; g < 2; ++g) {
      const auto& opts = o->param_groups()[g].options();
      double wd = -1;
      if (auto* a = dynamic_cast<const torch::optim::AdamWOptions*>(&opts)) wd = a->weight_decay();
      if (auto* c = dynamic_cast<const vcycle::optim::CAMEOptions*>(&opts)) wd = c->weight_decay();
      if (auto* f = dynamic_cast<const vcycle::optim::AdafactorOptions*>(&opts)) wd = f->weight_decay();
      CHECK(wd == (g == 0 ? 0.2 : 0.0));
    }
  }
}

TEST_CASE("registry: a tensor listed under two names is optimised once", "[optim][registry]") {
  auto named = gpt_like();
  named.emplace_back("head.weight", named[0].second);  // tied to tok_emb.weight
  auto opt = make_optimizer("came", named, 1e-3, YAML::Node(), "x");
  size_t count = 0;
  for (const auto& g : opt->param_groups()) count += g.params().size();
  CHECK(count == 5);
}

TEST_CASE("registry: unknown keys and bad values name the key path, the value and the line", "[optim][registry]") {
  using Catch::Matchers::Contains;
  auto named = gpt_like();
  auto error_for = [&](const std::string& name, const std::string& yaml) {
    return config_error([&] { make_optimizer(name, named, 1e-3, options_of(yaml, name), "cfg.yaml"); });
  };
  {
    const auto e = error_for("came", "optimizers:\n  came:\n    betas: [0.9, 0.999, 0.9999]\n    clip: 1\n");
    CHECK(e.key_path == "optimizers.came.clip");
    CHECK_THAT(e.what(), Contains("cfg.yaml:4") && Contains("'clip'") &&
                             Contains("betas, eps, clip_threshold, weight_decay, no_decay"));
  }
  {
    const auto e = error_for("came", "optimizers:\n  came:\n    betas: [0.9, 0.999, 1.5]\n");
    CHECK(e.key_path == "optimizers.came.betas");
    CHECK_THAT(e.what(), Contains("cfg.yaml:3") && Contains("betas[2]") && Contains("1.5") && Contains("[0, 1)"));
  }
  {
    const auto e = error_for("lamb", "optimizers:\n  lamb: {betas: [0.9]}\n");
    CHECK(e.key_path == "optimizers.lamb.betas");
    CHECK_THAT(e.what(), Contains("list of 2 numbers") && Contains("0.9"));
  }
  {
    const auto e = error_for("adamw", "optimizers:\n  adamw: {eps: tiny}\n");
    CHECK(e.key_path == "optimizers.adamw.eps");
    CHECK_THAT(e.what(), Contains("number") && Contains("tiny"));
  }
  {
    const auto e = error_for("adamw", "optimizers:\n  adamw: {weight_decay: -0.1}\n");
    CHECK(e.key_path == "optimizers.adamw.weight_decay");
    CHECK_THAT(e.what(), Contains("-0.1") && Contains(">= 0"));
  }
  {
    const auto e = error_for("came", "optimizers:\n  came: {eps: [0, 1.0e-16]}\n");
    CHECK(e.key_path == "optimizers.came.eps");
    CHECK_THAT(e.what(), Contains("eps[0]") && Contains("> 0"));
  }
  {
    const auto e = error_for("lamb", "optimizers:\n  lamb: {trust_ratio: maybe}\n");
    CHECK(e.key_path == "optimizers.lamb.trust_ratio");
    CHECK_THAT(e.what(), Contains("maybe"));
  }
  {
    const auto e = error_for("adafactor", "optimizers:\n  adafactor: {decay_rate: 0.8}\n");
    CHECK(e.key_path == "optimizers.adafactor.decay_rate");
    CHECK_THAT(e.what(), Contains("0.8"));
  }
  {
    const auto e = error_for("adafactor", "optimizers:\n  adafactor: {relative_step: false, warmup_init: true}\n");
    CHECK(e.key_path == "optimizers.adafactor.warmup_init");
  }
  {
    const auto e = error_for("adafactor", "optimizers:\n  adafactor: {clip_threshold: 0}\n");
    CHECK(e.key_path == "optimizers.adafactor.clip_threshold");
    CHECK_THAT(e.what(), Contains("> 0") && Contains("got 0"));
  }
  {
    const auto e = error_for("came", "optimizers:\n  came:\n    no_decay: [bias, nothing_like_this]\n");
    CHECK(e.key_path == "optimizers.came.no_decay");
    CHECK_THAT(e.what(), Contains("'nothing_like_this'") && Contains("matches no parameter"));
  }
  {
    const auto e = error_for("came", "optimizers:\n  came:\n    no_decay: bias\n");
    CHECK(e.key_path == "optimizers.came.no_decay");
  }
  {
    const auto e = error_for("came", "optimizers:\n  came: fast\n");
    CHECK(e.key_path == "optimizers.came");
    CHECK_THAT(e.what(), Contains("map"));
  }
  const auto e = config_error([&] { make_optimizer("came", named, -1.0, YAML::Node(), "cfg.yaml"); });
  CHECK(e.key_path == "lr");
}

TEST_CASE("registry: set_learning_rate reaches every group, except Adafactor's relative step",
          "[optim][registry]") {
  auto named = gpt_like();
  for (const std::string name : {"adamw", "came", "lamb"}) {
    auto opt = make_optimizer(name, named, 1e-3, YAML::Node(), "x");
    vcycle::optim::set_learning_rate(*opt, 0.25);
    for (const auto& g : opt->param_groups()) CHECK(g.options().get_lr() == 0.25);
  }
  auto relative = make_optimizer("adafactor", named, 1e-3, YAML::Node(), "x");
  vcycle::optim::set_learning_rate(*relative, 0.25);
  for (const auto& g : relative->param_groups()) CHECK(g.options().get_lr() == 0.0);
  auto fixed = make_optimizer("adafactor", named, 1e-3, YAML::Load("{relative_step: false}"), "x");
  vcycle::optim::set_learning_rate(*fixed, 0.25);
  for (const auto& g : fixed->param_groups()) CHECK(g.options().get_lr() == 0.25);
  CHECK_THROWS_AS(vcycle::optim::set_learning_rate(*fixed, -1), std::invalid_argument);
  // and the new lr is used: zero lr leaves a CAME parameter where it is, a positive one moves it
  auto w = torch::ones({3, 2}).set_requires_grad(true);
  auto came = make_optimizer("came", {{"w", w}}, 1e-3, YAML::Node(), "x");
  vcycle::optim::set_learning_rate(*came, 0.0);
  w.mutable_grad() = torch::ones({3, 2});
  came->step();
  CHECK(torch::equal(w, torch::ones({3, 2})));
  vcycle::optim::set_learning_rate(*came, 0.1);
  came->step();
  CHECK_FALSE(torch::equal(w, torch::ones({3, 2})));
}

TEST_CASE("registry: save_state / load_state resume every optimizer bitwise", "[optim][registry]") {
  const std::vector<std::vector<int64_t>> shapes{{9, 4}, {4}, {3, 5}};
  for (const auto& name : vcycle::optim::optimizer_names()) {
    INFO(name);
    check_resume_bitwise(
        [&](std::vector<torch::Tensor> p) {
          Named named;
          for (size_t i = 0; i < p.size(); ++i) named.emplace_back("p" + std::to_string(i), p[i]);
          return make_optimizer(name, named, 1e-3, YAML::Load("{weight_decay: 0.01}"), "x");
        },
        shapes, 2, 3);
  }
}

TEST_CASE("registry: state_bytes follows each optimizer's formula", "[optim][registry]") {
  auto w = torch::randn({8, 6}).set_requires_grad(true), b = torch::randn({6}).set_requires_grad(true);
  const Named named{{"w", w}, {"b", b}};
  const std::vector<std::pair<std::string, int64_t>> expected{
      {"adamw", 4 * 2 * (48 + 6)},            // m, v
      {"came", 4 * (48 + 2 * (8 + 6) + 2 * 6)},  // m + r, c, R, C for w; m, v for b
      {"lamb", 4 * 2 * (48 + 6)},             // m, v
      {"adafactor", 4 * ((8 + 6) + 6)}};      // r, c for w; v for b; no m
  for (const auto& [name, bytes] : expected) {
    INFO(name);
    auto opt = make_optimizer(name, named, 1e-3, YAML::Node(), "x");
    CHECK(vcycle::optim::state_bytes(*opt) == 0);
    w.mutable_grad() = torch::randn({8, 6});
    b.mutable_grad() = torch::randn({6});
    opt->step();
    CHECK(vcycle::optim::state_bytes(*opt) == bytes);
  }
  torch::optim::SGD sgd(std::vector<torch::Tensor>{w}, torch::optim::SGDOptions(0.1).momentum(0.9));
  sgd.step();
  CHECK_THROWS_AS(vcycle::optim::state_bytes(sgd), std::invalid_argument);
}

TEST_CASE("registry: load_state refuses bytes of another optimizer or other shapes", "[optim][registry]") {
  auto named = gpt_like();
  auto came = make_optimizer("came", named, 1e-3, YAML::Node(), "x");
  for (auto& [name, t] : named) t.mutable_grad() = torch::randn(t.sizes());
  came->step();
  const std::string bytes = vcycle::optim::save_state(*came);
  auto lamb = make_optimizer("lamb", named, 1e-3, YAML::Node(), "x");
  CHECK_THROWS_AS(vcycle::optim::load_state(*lamb, bytes), vcycle::InputError);
  CHECK_THROWS_AS(vcycle::optim::load_state(*came, "not an archive"), vcycle::InputError);
  // same optimizer and group sizes, but a parameter of another shape
  auto other = gpt_like();
  other[0].second = torch::randn({11, 5}).set_requires_grad(true);
  auto came2 = make_optimizer("came", other, 1e-3, YAML::Node(), "x");
  CHECK_THROWS_WITH(vcycle::optim::load_state(*came2, bytes), Catch::Matchers::Contains("shape"));
}

TEST_CASE("registry: clear_grads leaves no gradient, and training with it matches zero_grad bit for bit",
          "[optim][registry]") {
  // Two copies of a small two-layer net; three steps of each optimizer, one copy clearing its
  // gradients, the other zeroing them (LibTorch 1.13's zero_grad).
  for (const std::string name : {"adamw", "came", "lamb", "adafactor"}) {
    INFO(name);
    torch::manual_seed(3);
    const auto w1 = torch::randn({6, 4}), w2 = torch::randn({3, 6});
    const auto x = torch::randn({5, 4});
    std::vector<torch::Tensor> trained[2];
    for (int clear = 0; clear < 2; ++clear) {
      auto a = w1.clone().set_requires_grad(true), b = w2.clone().set_requires_grad(true);
      auto opt = make_optimizer(name, {{"a", a}, {"b", b}}, 1e-2, YAML::Node(), "x");
      for (int step = 0; step < 3; ++step) {
        if (clear) {
          vcycle::optim::clear_grads(*opt);
          CHECK_FALSE(a.grad().defined());
          CHECK_FALSE(b.grad().defined());
        } else {
          opt->zero_grad();
        }
        torch::tanh(x.matmul(a.t())).matmul(b.t()).pow(2).sum().backward();
        opt->step();
      }
      trained[clear] = {a.detach(), b.detach()};
    }
    CHECK_FALSE(torch::equal(trained[1][0], w1));  // it trained
    CHECK(torch::equal(trained[0][0], trained[1][0]));
    CHECK(torch::equal(trained[0][1], trained[1][1]));
  }
}
