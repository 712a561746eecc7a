// Adafactor: hand-computed updates (relative step, parameter scaling, warm-up init, β2ₜ, 1-D and
// factored, first moment, weight decay, clipping), resume after save/load, state size, per-group
// options, low-precision parameters, fused vs ATen path, argument checks, and convergence.
#include <cmath>

#include <torch/torch.h>

#include "vcycle/optim.h"
// Last: glog (via c10) defines CHECK too, and Catch's must win.
#include "optim/helpers.h"

using namespace optim_test;
using vcycle::optim::Adafactor;
using vcycle::optim::AdafactorOptions;

namespace {

double rms(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s / x.size());
}

// Adafactor by the spec, in double, for an M×N matrix (row-major), loop by loop.
struct AdafactorByHand {
  int M, N;
  AdafactorOptions o;
  std::vector<double> w, m, r, c;
  int t = 0;

  AdafactorByHand(int M_, int N_, std::vector<double> w0, AdafactorOptions o_)
      : M(M_), N(N_), o(o_), w(std::move(w0)), m(M * N), r(M), c(N) {}

  void step(const std::vector<double>& g) {
    ++t;
    const double rho = o.relative_step() ? std::min(o.warmup_init() ? 1e-6 * t : 1e-2, 1 / std::sqrt(t)) : o.lr();
    const double alpha = o.scale_parameter() ? rho * std::max(std::get<1>(o.eps()), rms(w)) : rho;
    const double beta2 = 1 - std::pow(t, o.decay_rate());
    std::vector<double> row_u(M, 0.0), col_u(N, 0.0);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        const double U = g[i * N + j] * g[i * N + j] + std::get<0>(o.eps());
        row_u[i] += U / N;
        col_u[j] += U / M;
      }
    for (int i = 0; i < M; ++i) r[i] = beta2 * r[i] + (1 - beta2) * row_u[i];
    for (int j = 0; j < N; ++j) c[j] = beta2 * c[j] + (1 - beta2) * col_u[j];
    double r_mean = 0;
    for (double x : r) r_mean += x / M;
    std::vector<double> u(M * N);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) u[i * N + j] = g[i * N + j] / std::sqrt(r[i] / r_mean) / std::sqrt(c[j]);
    const double divisor = std::max(1.0, rms(u) / o.clip_threshold());
    for (int k = 0; k < M * N; ++k) {
      double step = alpha * u[k] / divisor;
      if (o.beta1() > 0) {
        m[k] = o.beta1() * m[k] + (1 - o.beta1()) * step;
        step = m[k];
      }
      w[k] -= o.weight_decay() * alpha * w[k];
      w[k] -= step;
    }
  }
};

}  // namespace

TEST_CASE("Adafactor: 1-D parameter with relative step and parameter scaling, two steps by hand",
          "[optim][adafactor]") {
  // Defaults: ρ = min(1e-2, 1/sqrt(t)) = 0.01, α = ρ·max(1e-3, RMS(W)), β2ₜ = 1 − t^−0.8.
  //   t = 1: β2 = 0 so v = G1² + ε1 and u = sign(G1) = (1, −1); RMS(u) = 1, no clipping.
  //          α1 = 0.01·RMS(1, 2) = 0.01·sqrt(2.5) = 0.0158114;  W1 = W0 − α1·(1, −1)
  //   t = 2: β2 = 1 − 2^−0.8 = 0.425651;  v = β2·G1² + (1 − β2)·G2² = (4.405208, 9.107812)
  //          u = G2/sqrt(v) = (0.476449, 0.662708), RMS(u) = 0.577142 < 1, no clipping
  //          α2 = 0.01·RMS(W1) = 0.0158621;  W2 = W1 − α2·u
  const std::vector<double> w0{1, 2};
  for (bool fused : {true, false}) {
    INFO((fused ? "fused kernels" : "ATen path"));
    Fused mode(fused);
    auto w = param(w0, {2});
    Adafactor opt({w});
    set_grad(w, {3, -4});
    opt.step();
    const double a1 = 0.01 * std::sqrt(2.5);
    const std::vector<double> w1{1 - a1, 2 + a1};
    check_close(w, w1, 1e-6);
    set_grad(w, {1, 2});
    opt.step();
    const double beta2 = 1 - std::pow(2.0, -0.8);
    CHECK(beta2 == Approx(0.425651).epsilon(1e-5));
    const double v[2] = {beta2 * 9 + (1 - beta2) * 1, beta2 * 16 + (1 - beta2) * 4};
    const double u[2] = {1 / std::sqrt(v[0]), 2 / std::sqrt(v[1])};
    CHECK(u[0] == Approx(0.476449).epsilon(1e-5));
    CHECK(rms({u[0], u[1]}) < 1);
    const double a2 = 0.01 * rms(w1);
    CHECK(a2 == Approx(0.0158621).epsilon(1e-5));
    check_close(w, {w1[0] - a2 * u[0], w1[1] - a2 * u[1]}, 1e-6);
    auto& st = static_cast<vcycle::optim::AdafactorParamState&>(*opt.state().begin()->second);
    check_close(st.exp_avg_sq(), {v[0], v[1]}, 1e-6);
    CHECK_FALSE(st.exp_avg().defined());  // beta1 = 0: no first moment
  }
}

TEST_CASE("Adafactor: rank-1 gradient on a zero 2x3 matrix, two steps by hand", "[optim][adafactor]") {
  // For rank-1 G the factored estimate is exact, so u = sign(G) at every step (RMS 1, no clipping).
  // W starts at 0, so α = 0.01·max(ε2 = 1e-3, RMS(W)) = 1e-5 at step 1 and, since RMS(W1) = 1e-5
  // is still below ε2, again 1e-5 at step 2: W1 = −1e-5·sign(G), W2 = −2e-5·sign(G).
  const std::vector<double> g{1, 2, -3, -2, -4, 6}, sign{1, 1, -1, -1, -1, 1};
  for (bool fused : {true, false}) {
    INFO((fused ? "fused kernels" : "ATen path"));
    Fused mode(fused);
    auto w = param({0, 0, 0, 0, 0, 0}, {2, 3});
    Adafactor opt({w});
    for (double k : {1.0, 2.0}) {
      set_grad(w, g);
      opt.step();
      std::vector<double> expected;
      for (double s : sign) expected.push_back(-1e-5 * k * s);
      check_close(w, expected, 1e-5);
    }
  }
}

TEST_CASE("Adafactor: general 2x3 matrix against the spec's arithmetic in double", "[optim][adafactor]") {
  const std::vector<double> w0{0.1, 0.2, 0.3, -0.4, 0.5, -0.6};
  const std::vector<std::vector<double>> grads{{1, -2, 3, 0.5, 1, -1}, {-1, 0.5, 2, 2, -3, 0.25}, {0.3, 0.3, -1, 1, 2, 0}};
  const std::vector<AdafactorOptions> variants{
      AdafactorOptions(),                                                               // relative, scaled
      AdafactorOptions().warmup_init(true).weight_decay(0.1),                           // ρ = 1e-6·t
      AdafactorOptions(0.05).relative_step(false).beta1(0.9).weight_decay(0.2),         // lr, first moment
      AdafactorOptions(0.05).relative_step(false).scale_parameter(false).clip_threshold(0.5)};
  for (size_t v = 0; v < variants.size(); ++v) {
    for (bool fused : {true, false}) {
      INFO("variant " << v << (fused ? ", fused kernels" : ", ATen path"));
      Fused mode(fused);
      AdafactorByHand ref(2, 3, w0, variants[v]);
      auto w = param(w0, {2, 3});
      Adafactor opt({w}, variants[v]);
      for (const auto& g : grads) {
        ref.step(g);
        set_grad(w, g);
        opt.step();
        std::vector<double> move(6);
        for (int k = 0; k < 6; ++k) move[k] = ref.w[k] - w0[k];
        // float32 against double. The moves span ~1e-6 (warm-up init) to 1e-1; W itself (|W| <= 1)
        // is only resolved to 6e-8 in float32, hence the 2e-7 floor besides 1e-4 relative.
        check_close(w - param(w0, {2, 3}), move, 1e-4, 2e-7);
        auto& st = static_cast<vcycle::optim::AdafactorParamState&>(*opt.state().begin()->second);
        check_close(st.exp_avg_sq_row(), ref.r, 1e-5);
        check_close(st.exp_avg_sq_col(), ref.c, 1e-5);
        if (variants[v].beta1() > 0) check_close(st.exp_avg(), ref.m, 1e-4, 1e-9);
      }
    }
  }
}

TEST_CASE("Adafactor: fixed lr, weight decay, first moment and clipping by hand", "[optim][adafactor]") {
  // relative_step false, scale_parameter false: α = lr = 0.1. G = (3, −4): û = sign(G) = (1, −1).
  SECTION("weight decay: W ← W − λ·α·W − α·û = 0.95·W − 0.1·û with λ = 0.5") {
    auto w = param({1, 2}, {2});
    Adafactor opt({w}, AdafactorOptions(0.1).relative_step(false).scale_parameter(false).weight_decay(0.5));
    set_grad(w, {3, -4});
    opt.step();
    check_close(w, {0.95 - 0.1, 1.9 + 0.1}, 1e-6);
  }
  SECTION("first moment: m = 0.1·α·û, then 0.19·α·û; W ← W − m") {
    auto w = param({1, 2}, {2});
    Adafactor opt({w}, AdafactorOptions(0.1).relative_step(false).scale_parameter(false).beta1(0.9));
    set_grad(w, {3, -4});
    opt.step();
    check_close(w, {1 - 0.01, 2 + 0.01}, 1e-6);
    set_grad(w, {3, -4});
    opt.step();
    check_close(w, {1 - 0.01 - 0.019, 2 + 0.01 + 0.019}, 1e-6);
  }
  SECTION("clipping: u = (1, −1) has RMS 1; clip_threshold 0.5 halves it") {
    auto w = param({1, 2}, {2});
    Adafactor opt({w}, AdafactorOptions(0.1).relative_step(false).scale_parameter(false).clip_threshold(0.5));
    set_grad(w, {3, -4});
    opt.step();
    check_close(w, {1 - 0.05, 2 + 0.05}, 1e-6);
  }
  SECTION("warm-up init: ρ = min(1e-6·t, 1/sqrt(t)) = 1e-6, then 2e-6 (unscaled, from W = 0)") {
    auto w = param({0, 0}, {2});
    Adafactor opt({w}, AdafactorOptions().warmup_init(true).scale_parameter(false));
    set_grad(w, {3, -4});
    opt.step();
    check_close(w, {-1e-6, 1e-6}, 1e-5);
    set_grad(w, {3, -4});
    opt.step();
    check_close(w, {-3e-6, 3e-6}, 1e-5);
  }
}

TEST_CASE("Adafactor: save, load and continue equals an uninterrupted run, bitwise", "[optim][adafactor]") {
  const std::vector<std::vector<int64_t>> shapes{{37, 53}, {2, 5, 7}, {13}, {300, 200}, {}};
  for (bool fused : {true, false}) {
    INFO((fused ? "fused kernels" : "ATen path"));
    Fused mode(fused);
    vcycle::test::ScopedThreads threads(2);
    check_resume_bitwise([](std::vector<torch::Tensor> p) { return std::make_unique<Adafactor>(p); }, shapes, 3, 3);
    check_resume_bitwise(
        [](std::vector<torch::Tensor> p) {
          return std::make_unique<Adafactor>(
              p, AdafactorOptions(1e-3).relative_step(false).beta1(0.9).weight_decay(0.01));
        },
        shapes, 3, 3);
  }
}

TEST_CASE("Adafactor: state is r + c per matrix, plus m only with beta1", "[optim][adafactor]") {
  const int64_t m = 7, n = 5;
  for (double beta1 : {0.0, 0.9}) {
    auto w = torch::randn({m, n}).set_requires_grad(true);
    auto b = torch::randn({n}).set_requires_grad(true);
    Adafactor opt(std::vector<torch::Tensor>{w, b}, AdafactorOptions().beta1(beta1));
    w.mutable_grad() = torch::randn({m, n});
    b.mutable_grad() = torch::randn({n});
    opt.step();
    const int64_t first = beta1 > 0 ? m * n + n : 0;
    CHECK(vcycle::optim::state_bytes(opt) == 4 * ((m + n) + n + first));
  }
}

TEST_CASE("Adafactor: each parameter group keeps its own lr and weight decay", "[optim][adafactor]") {
  check_groups_independent<Adafactor>(AdafactorOptions(0.1).relative_step(false),
                                      AdafactorOptions(0.01).relative_step(false).weight_decay(0.5),
                                      AdafactorOptions(0.5).relative_step(false));
}

TEST_CASE("Adafactor: bf16 and fp16 parameters get fp32 state and fp32 math", "[optim][adafactor]") {
  check_low_precision<Adafactor, AdafactorOptions, vcycle::optim::AdafactorParamState>(
      AdafactorOptions(1e-2).relative_step(false).beta1(0.9).weight_decay(0.1));
}

TEST_CASE("Adafactor: fused kernels match the ATen path and ignore the thread count", "[optim][adafactor]") {
  check_fused_matches_aten<Adafactor>(AdafactorOptions(1e-2).relative_step(false).beta1(0.9).weight_decay(0.1));
  check_fused_matches_aten<Adafactor>(AdafactorOptions().scale_parameter(false));
}

TEST_CASE("Adafactor: invalid hyperparameters and sparse gradients are refused", "[optim][adafactor]") {
  auto w = torch::zeros({2, 3}).set_requires_grad(true);
  using Catch::Matchers::Contains;
  auto make = [&](AdafactorOptions o) { Adafactor opt(std::vector<torch::Tensor>{w}, o); };
  CHECK_THROWS_WITH(make(AdafactorOptions(1e-3)), Contains("lr") && Contains("0.001") && Contains("relative_step"));
  CHECK_THROWS_WITH(make(AdafactorOptions(-1).relative_step(false)), Contains("lr") && Contains("-1"));
  CHECK_THROWS_WITH(make(AdafactorOptions(1e-3).relative_step(false).warmup_init(true)), Contains("warmup_init"));
  CHECK_THROWS_WITH(make(AdafactorOptions().eps({0.0, 1e-3})), Contains("eps[0]"));
  CHECK_THROWS_WITH(make(AdafactorOptions().eps({1e-30, -1e-3})), Contains("eps[1]") && Contains("-0.001"));
  CHECK_THROWS_WITH(make(AdafactorOptions().clip_threshold(-1)), Contains("clip_threshold") && Contains("-1"));
  CHECK_THROWS_WITH(make(AdafactorOptions().decay_rate(0.5)), Contains("decay_rate") && Contains("0.5"));
  CHECK_THROWS_WITH(make(AdafactorOptions().beta1(1.0)), Contains("beta1") && Contains("1"));
  CHECK_THROWS_WITH(make(AdafactorOptions().weight_decay(-0.1)), Contains("weight_decay") && Contains("-0.1"));
  CHECK_NOTHROW(make(AdafactorOptions(1e-3).relative_step(false)));
  Adafactor opt(std::vector<torch::Tensor>{w});
  w.mutable_grad() = torch::zeros({2, 3}).to_sparse();
  CHECK_THROWS_WITH(opt.step(), Contains("sparse"));
}

TEST_CASE("Adafactor: least-squares regression converges", "[optim][adafactor]") {
  // From zero weights parameter scaling would start at α = 1e-5 (ε2·ρ) and crawl, so the relative
  // step runs unscaled (α = 0.01); and a fixed lr with a first moment. Observed ~5e-5 and ~1e-7.
  const double relative = least_squares_ratio(
      [](torch::Tensor w, torch::Tensor b) {
        return std::make_unique<Adafactor>(std::vector<torch::Tensor>{w, b},
                                           AdafactorOptions().scale_parameter(false));
      },
      400);
  const double fixed = least_squares_ratio(
      [](torch::Tensor w, torch::Tensor b) {
        return std::make_unique<Adafactor>(
            std::vector<torch::Tensor>{w, b},
            AdafactorOptions(0.03).relative_step(false).scale_parameter(false).beta1(0.9));
      },
      400);
  INFO("final / initial loss: relative step " << relative << ", fixed lr " << fixed);
  CHECK(relative < 1e-2);
  CHECK(fixed < 1e-4);
}
