// LAMB: hand-computed updates (trust ratio, its zero cases, weight decay, bias correction, 1-D),
// resume after save/load, state size, per-group options, low-precision parameters, fused kernel vs
// ATen path, argument checks, and convergence on least squares.
#include <cmath>

#include <torch/torch.h>

#include "vcycle/optim.h"
// Last: glog (via c10) defines CHECK too, and Catch's must win.
#include "optim/helpers.h"

using namespace optim_test;
using vcycle::optim::LAMB;
using vcycle::optim::LAMBOptions;

namespace {

double norm(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}

}  // namespace

TEST_CASE("LAMB: trust ratio on a 2x3 matrix, two steps by hand", "[optim][lamb]") {
  const bool fused = GENERATE(true, false);
  INFO((fused ? "fused kernel" : "ATen path"));
  Fused mode(fused);
  // W0 = [[1, 2, 2], [0, 0, 0]] (‖W0‖ = 3), G = [[1, −1, 1], [1, 1, −1]] twice, λ = 0, η = 0.1.
  // With bias correction m̂ = G and v̂ = G² after both steps (G is constant), so u = G/(1 + 1e-6)
  // and r·u = ‖W‖·G/‖G‖: the eps cancels and W ← W − 0.1·‖W‖/sqrt(6)·G.
  //   step 1: W1 = W0 − 0.1·3/sqrt(6)·G = W0 − 0.1224745·G
  //   step 2: W2 = W1 − 0.1·‖W1‖/sqrt(6)·G, ‖W1‖ = 2.974063 (from the W1 entries)
  const std::vector<double> w0{1, 2, 2, 0, 0, 0}, g{1, -1, 1, 1, 1, -1};
  auto w = param(w0, {2, 3});
  LAMB opt({w}, LAMBOptions(0.1).weight_decay(0));
  set_grad(w, g);
  opt.step();
  std::vector<double> w1(6), w2(6);
  for (int i = 0; i < 6; ++i) w1[i] = w0[i] - 0.1 * 3 / std::sqrt(6.0) * g[i];
  CHECK(w1[0] == Approx(1 - 0.1224745).epsilon(1e-6));
  check_close(w, w1, 1e-6);
  CHECK(norm(w1) == Approx(2.974063).epsilon(1e-6));
  set_grad(w, g);
  opt.step();
  for (int i = 0; i < 6; ++i) w2[i] = w1[i] - 0.1 * norm(w1) / std::sqrt(6.0) * g[i];
  check_close(w, w2, 1e-6);
}

TEST_CASE("LAMB: weight decay enters the update before the trust ratio", "[optim][lamb]") {
  const bool fused = GENERATE(true, false);
  INFO((fused ? "fused kernel" : "ATen path"));
  Fused mode(fused);
  // Same W0 and G, λ = 0.1: u = G/(1+1e-6) + 0.1·W0 = [[1.1, −0.8, 1.2], [1, 1, −1]] (to 1e-6),
  // ‖u‖² = 1.21 + 0.64 + 1.44 + 3 = 6.29, r = 3/sqrt(6.29) = 1.196179, W1 = W0 − 0.1·r·u.
  const std::vector<double> w0{1, 2, 2, 0, 0, 0}, g{1, -1, 1, 1, 1, -1};
  auto w = param(w0, {2, 3});
  LAMB opt({w}, LAMBOptions(0.1).weight_decay(0.1));
  set_grad(w, g);
  opt.step();
  std::vector<double> u(6), w1(6);
  for (int i = 0; i < 6; ++i) u[i] = g[i] / (1 + 1e-6) + 0.1 * w0[i];
  const double r = 3 / norm(u);
  CHECK(r == Approx(1.196179).epsilon(1e-5));
  for (int i = 0; i < 6; ++i) w1[i] = w0[i] - 0.1 * r * u[i];
  check_close(w, w1, 1e-6);
}

TEST_CASE("LAMB: trust ratio is 1 when the weight or the update is zero", "[optim][lamb]") {
  const bool fused = GENERATE(true, false);
  INFO((fused ? "fused kernel" : "ATen path"));
  Fused mode(fused);
  const std::vector<double> g{1, -1, 1, 1, 1, -1};
  SECTION("W = 0: the full step is taken (a ratio of 0 would freeze the weight at zero)") {
    auto w = param({0, 0, 0, 0, 0, 0}, {2, 3});
    LAMB opt({w}, LAMBOptions(0.1).weight_decay(0.1));
    set_grad(w, g);
    opt.step();
    std::vector<double> expected;
    for (double x : g) expected.push_back(-0.1 * x / (1 + 1e-6));
    check_close(w, expected, 1e-6);
  }
  SECTION("G = 0 and λ = 0: u = 0, W stays put and finite (0/0 would make it NaN)") {
    const std::vector<double> w0{1, 2, 2, 0, 0, 0};
    auto w = param(w0, {2, 3});
    LAMB opt({w}, LAMBOptions(0.1).weight_decay(0));
    set_grad(w, {0, 0, 0, 0, 0, 0});
    opt.step();
    check_close(w, w0, 0.0);
  }
  SECTION("G = 0 and λ > 0: u = λW, r = 1/λ, so W ← (1 − η)·W") {
    const std::vector<double> w0{1, 2, 2, 0, 0, 0};
    auto w = param(w0, {2, 3});
    LAMB opt({w}, LAMBOptions(0.1).weight_decay(0.25));
    set_grad(w, {0, 0, 0, 0, 0, 0});
    opt.step();
    check_close(w, {0.9, 1.8, 1.8, 0, 0, 0}, 1e-6);
  }
}

TEST_CASE("LAMB: 1-D parameter without trust ratio, bias correction on and off", "[optim][lamb]") {
  const bool fused = GENERATE(true, false);
  INFO((fused ? "fused kernel" : "ATen path"));
  Fused mode(fused);
  // W0 = (1, 1), G1 = (3, −4), G2 = (1, 2), η = 0.1, λ = 0, trust_ratio false (as the registry
  // sets for vectors).
  //   m1 = 0.1·G1 = (0.3, −0.4),  v1 = 0.001·G1² = (0.009, 0.016)
  //   m2 = 0.9·m1 + 0.1·G2 = (0.37, −0.16),  v2 = 0.999·v1 + 0.001·G2² = (0.009991, 0.019984)
  // bias correction: 1 − β1 = 0.1, 1 − β2 = 0.001 after step 1; 1 − β1² = 0.19, 1 − β2² = 0.001999 after step 2
  auto w_on = param({1, 1}, {2}), w_off = param({1, 1}, {2});
  LAMB on({w_on}, LAMBOptions(0.1).weight_decay(0).trust_ratio(false));
  LAMB off({w_off}, LAMBOptions(0.1).weight_decay(0).trust_ratio(false).bias_correction(false));
  const double eps = 1e-6;
  // step 1
  set_grad(w_on, {3, -4});
  set_grad(w_off, {3, -4});
  on.step();
  off.step();
  const double on1[2] = {3 / (3 + eps), -4 / (4 + eps)};  // m̂ = G1, v̂ = G1²
  const double off1[2] = {0.3 / (std::sqrt(0.009) + eps), -0.4 / (std::sqrt(0.016) + eps)};
  CHECK(off1[0] == Approx(3.16224).epsilon(1e-5));
  check_close(w_on, {1 - 0.1 * on1[0], 1 - 0.1 * on1[1]}, 1e-6);
  check_close(w_off, {1 - 0.1 * off1[0], 1 - 0.1 * off1[1]}, 1e-6);
  // step 2
  set_grad(w_on, {1, 2});
  set_grad(w_off, {1, 2});
  on.step();
  off.step();
  const double on2[2] = {(0.37 / 0.19) / (std::sqrt(0.009991 / 0.001999) + eps),
                         (-0.16 / 0.19) / (std::sqrt(0.019984 / 0.001999) + eps)};
  const double off2[2] = {0.37 / (std::sqrt(0.009991) + eps), -0.16 / (std::sqrt(0.019984) + eps)};
  CHECK(on2[0] == Approx(0.871060).epsilon(1e-5));
  check_close(w_on, {1 - 0.1 * (on1[0] + on2[0]), 1 - 0.1 * (on1[1] + on2[1])}, 1e-6);
  check_close(w_off, {1 - 0.1 * (off1[0] + off2[0]), 1 - 0.1 * (off1[1] + off2[1])}, 1e-6);
  auto& st = static_cast<vcycle::optim::LAMBParamState&>(*on.state().begin()->second);
  CHECK(st.step() == 2);
  check_close(st.exp_avg(), {0.37, -0.16}, 1e-6);
  check_close(st.exp_avg_sq(), {0.009991, 0.019984}, 1e-6);
}

TEST_CASE("LAMB: save, load and continue equals an uninterrupted run, bitwise", "[optim][lamb]") {
  const bool fused = GENERATE(true, false);
  INFO((fused ? "fused kernel" : "ATen path"));
  Fused mode(fused);
  check_resume_bitwise(
      [](std::vector<torch::Tensor> p) { return std::make_unique<LAMB>(p, LAMBOptions(1e-3)); },
      {{37, 53}, {2, 5, 7}, {13}, {}}, 3, 3);
}

TEST_CASE("LAMB: state is m and v in fp32", "[optim][lamb]") {
  auto w = torch::randn({7, 5}).set_requires_grad(true);
  LAMB opt(std::vector<torch::Tensor>{w});
  CHECK(vcycle::optim::state_bytes(opt) == 0);
  w.mutable_grad() = torch::randn({7, 5});
  opt.step();
  CHECK(vcycle::optim::state_bytes(opt) == 4 * 2 * 7 * 5);
}

TEST_CASE("LAMB: each parameter group keeps its own lr, weight decay and trust ratio", "[optim][lamb]") {
  check_groups_independent<LAMB>(LAMBOptions(0.1).weight_decay(0), LAMBOptions(0.01).weight_decay(0.5),
                                 LAMBOptions(0.5));
  check_groups_independent<LAMB>(LAMBOptions(0.1), LAMBOptions(0.1).trust_ratio(false), LAMBOptions(0.5));
}

TEST_CASE("LAMB: bf16 and fp16 parameters get fp32 state and fp32 math", "[optim][lamb]") {
  check_low_precision<LAMB, LAMBOptions, vcycle::optim::LAMBParamState>(LAMBOptions(1e-2));
}

TEST_CASE("LAMB: fused kernel matches the ATen path and ignores the thread count", "[optim][lamb]") {
  check_fused_matches_aten<LAMB>(LAMBOptions(1e-2).weight_decay(0.1));
  check_fused_matches_aten<LAMB>(LAMBOptions(1e-2).trust_ratio(false).bias_correction(false));
}

TEST_CASE("LAMB: invalid hyperparameters and sparse gradients are refused", "[optim][lamb]") {
  auto w = torch::zeros({2, 3}).set_requires_grad(true);
  using Catch::Matchers::Contains;
  auto make = [&](LAMBOptions o) { LAMB opt(std::vector<torch::Tensor>{w}, o); };
  CHECK_THROWS_WITH(make(LAMBOptions(-0.1)), Contains("lr") && Contains("-0.1"));
  CHECK_THROWS_WITH(make(LAMBOptions().betas({-0.5, 0.999})), Contains("betas[0]") && Contains("-0.5"));
  CHECK_THROWS_WITH(make(LAMBOptions().betas({0.9, 1.0})), Contains("betas[1]") && Contains("1"));
  CHECK_THROWS_WITH(make(LAMBOptions().eps(0)), Contains("eps") && Contains("0"));
  CHECK_THROWS_WITH(make(LAMBOptions().weight_decay(-1)), Contains("weight_decay") && Contains("-1"));
  LAMB opt(std::vector<torch::Tensor>{w});
  w.mutable_grad() = torch::zeros({2, 3}).to_sparse();
  CHECK_THROWS_WITH(opt.step(), Contains("sparse"));
}

TEST_CASE("LAMB: least-squares regression converges", "[optim][lamb]") {
  // From zero weights (trust ratio 1 until ‖W‖ > 0), lr 0.03, default λ = 0.01 (which moves the
  // optimum a little, hence 1e-2 rather than a tighter bound; observed ~1e-4 after 400 steps).
  const double ratio = least_squares_ratio(
      [](torch::Tensor w, torch::Tensor b) {
        return std::make_unique<LAMB>(std::vector<torch::Tensor>{w, b}, LAMBOptions(0.03));
      },
      400);
  INFO("final / initial loss " << ratio);
  CHECK(ratio < 1e-2);
}
