// CAME: hand-computed updates (factored and 1-D, weight decay, clipping), resume after save/load,
// state size, per-group options, low-precision parameters, fused vs ATen path, argument checks,
// and convergence on least squares.
#include <cmath>

#include <torch/torch.h>

#include "vcycle/optim.h"
// Last: glog (via c10) defines CHECK too, and Catch's must win.
#include "optim/helpers.h"

using namespace optim_test;
using vcycle::optim::CAME;
using vcycle::optim::CAMEOptions;

namespace {

// CAME by the spec, in double, for an M×N matrix (row-major): the arithmetic one does by hand,
// written out loop by loop so that it shares no code with the optimizer.
struct CameByHand {
  int M, N;
  double lr, wd, clip;
  std::vector<double> w, m, r, c, R, C;
  const double b1 = 0.9, b2 = 0.999, b3 = 0.9999, e1 = 1e-30, e2 = 1e-16;

  CameByHand(int M_, int N_, std::vector<double> w0, double lr_, double wd_, double clip_ = 1.0)
      : M(M_), N(N_), lr(lr_), wd(wd_), clip(clip_), w(std::move(w0)), m(M * N), r(M), c(N), R(M), C(N) {}

  void step(const std::vector<double>& g) {
    std::vector<double> row_u(M, 0.0), col_u(N, 0.0);  // means of U = G² + ε1
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        const double U = g[i * N + j] * g[i * N + j] + e1;
        row_u[i] += U / N;
        col_u[j] += U / M;
      }
    for (int i = 0; i < M; ++i) r[i] = b2 * r[i] + (1 - b2) * row_u[i];
    for (int j = 0; j < N; ++j) c[j] = b2 * c[j] + (1 - b2) * col_u[j];
    double r_mean = 0;
    for (double x : r) r_mean += x / M;
    std::vector<double> u(M * N);
    double sum_sq = 0;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        u[i * N + j] = g[i * N + j] / std::sqrt(r[i] / r_mean) / std::sqrt(c[j]);
        sum_sq += u[i * N + j] * u[i * N + j];
      }
    const double divisor = std::max(1.0, std::sqrt(sum_sq / (M * N)) / clip);
    std::vector<double> row_i(M, 0.0), col_i(N, 0.0);  // means of I = (û − m)² + ε2
    for (int k = 0; k < M * N; ++k) {
      const double uh = u[k] / divisor;
      m[k] = b1 * m[k] + (1 - b1) * uh;
      const double I = (uh - m[k]) * (uh - m[k]) + e2;
      row_i[k / N] += I / N;
      col_i[k % N] += I / M;
    }
    for (int i = 0; i < M; ++i) R[i] = b3 * R[i] + (1 - b3) * row_i[i];
    for (int j = 0; j < N; ++j) C[j] = b3 * C[j] + (1 - b3) * col_i[j];
    double R_mean = 0;
    for (double x : R) R_mean += x / M;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        const double S = m[i * N + j] / std::sqrt(R[i] / R_mean) / std::sqrt(C[j]);
        w[i * N + j] -= lr * wd * w[i * N + j];
        w[i * N + j] -= lr * S;
      }
  }
};

std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] - b[i];
  return out;
}

}  // namespace

TEST_CASE("CAME: rank-1 gradient on a 2x3 matrix, two steps by hand", "[optim][came]") {
  // G = p⊗q with p = (1, −2), q = (1, 2, −3). For a rank-1 G the factored second moment is exact, so
  // u = sign(G)/sqrt(1 − β2) and clipping to RMS 1 gives û = sign(G).
  //   step 1: m = 0.1·sign, I = 0.9² + ε2 everywhere, R = C = 1e-4·0.81, R/mean R = 1,
  //           S = 0.1/sqrt(0.81e-4) · sign = 11.111·sign (the "≈10·η first step" of the spec)
  //   step 2: û = sign again, m = 0.19·sign, I = 0.81², C = 0.9999·0.81e-4 + 1e-4·0.6561 = 1.466019e-4,
  //           S = 0.19/sqrt(1.466019e-4) · sign = 15.69214·sign
  const std::vector<double> w0{0.5, -0.5, 1, 1, 2, -1}, g{1, 2, -3, -2, -4, 6};
  const std::vector<double> sign{1, 1, -1, -1, -1, 1};
  const double lr = 1e-3;
  for (bool fused : {true, false}) {
    INFO((fused ? "fused kernels" : "ATen path"));
    Fused mode(fused);
    auto w = param(w0, {2, 3});
    CAME opt({w}, CAMEOptions(lr));
    set_grad(w, g);
    const auto version = w._version();
    opt.step();
    CHECK(w._version() > version);  // autograd sees the in-place change, fused kernels included
    const double s1 = 0.1 / std::sqrt(0.81e-4), s2 = 0.19 / std::sqrt(0.9999 * 0.81e-4 + 1e-4 * 0.6561);
    CHECK(s1 == Approx(11.1111).epsilon(1e-5));
    CHECK(s2 == Approx(15.69214).epsilon(1e-5));
    std::vector<double> d1, d2;
    for (double s : sign) d1.push_back(-lr * s1 * s);
    for (double s : sign) d2.push_back(-lr * (s1 + s2) * s);
    // the changes are ~1e-2 on entries ~1, so float32 rounding of W (6e-8) is ~1e-5 of a change
    check_close(w - param(w0, {2, 3}), d1, 1e-4);
    set_grad(w, g);
    opt.step();
    check_close(w - param(w0, {2, 3}), d2, 1e-4);
  }
}

TEST_CASE("CAME: general 2x3 matrix, two steps against the spec's arithmetic in double", "[optim][came]") {
  const std::vector<double> w0{0.1, 0.2, 0.3, -0.4, 0.5, -0.6};
  const std::vector<double> g1{1, -2, 3, 0.5, 1, -1}, g2{-1, 0.5, 2, 2, -3, 0.25};
  // Weight decay on, and clip thresholds that do (1) and do not (100: RMS(u) is ~30) clip.
  for (double clip : {1.0, 100.0}) {
    for (bool fused : {true, false}) {
      INFO("clip " << clip << (fused ? ", fused kernels" : ", ATen path"));
      Fused mode(fused);
      CameByHand ref(2, 3, w0, 0.01, 0.1, clip);
      auto w = param(w0, {2, 3});
      CAME opt({w}, CAMEOptions(0.01).weight_decay(0.1).clip_threshold(clip));
      for (const auto& g : {g1, g2}) {
        ref.step(g);
        set_grad(w, g);
        opt.step();
        // float32 state and parameters against double: changes of ~0.1 known to ~1e-6 relative
        check_close(w - param(w0, {2, 3}), minus(ref.w, w0), 1e-4, 1e-7);
        auto& st = static_cast<vcycle::optim::CAMEParamState&>(*opt.state().begin()->second);
        check_close(st.exp_avg(), ref.m, 1e-5, 1e-9);
        check_close(st.exp_avg_sq_row(), ref.r, 1e-5);
        check_close(st.exp_avg_sq_col(), ref.c, 1e-5);
        check_close(st.exp_avg_res_row(), ref.R, 1e-4);
        check_close(st.exp_avg_res_col(), ref.C, 1e-4);
      }
    }
  }
}

TEST_CASE("CAME: 1-D parameter by hand, with and without weight decay", "[optim][came]") {
  // G = (3, −4) twice. v = (1−β2)·G² after step 1 and 0.001999·G² after step 2, so u = ±1/sqrt(v/G²)
  // has RMS > 1 and û = sign(G) both times; m = 0.1·sign, then 0.19·sign; S = m.
  //   λ = 0:   W = (1, 1) → (0.99, 1.01) → (0.971, 1.029)
  //   λ = 0.5: W ← 0.95·W − 0.1·m: (1, 1) → (0.94, 0.96) → (0.874, 0.931)
  for (bool fused : {true, false}) {
    INFO((fused ? "fused kernels" : "ATen path"));
    Fused mode(fused);
    for (double wd : {0.0, 0.5}) {
      auto w = param({1, 1}, {2});
      CAME opt({w}, CAMEOptions(0.1).weight_decay(wd));
      set_grad(w, {3, -4});
      opt.step();
      check_close(w, wd == 0 ? std::vector<double>{0.99, 1.01} : std::vector<double>{0.94, 0.96}, 1e-6);
      set_grad(w, {3, -4});
      opt.step();
      check_close(w, wd == 0 ? std::vector<double>{0.971, 1.029} : std::vector<double>{0.874, 0.931}, 1e-6);
      auto& st = static_cast<vcycle::optim::CAMEParamState&>(*opt.state().begin()->second);
      check_close(st.exp_avg(), {0.19, -0.19}, 1e-6);  // m was not aliased by S = m
      check_close(st.exp_avg_sq(), {0.001999 * 9, 0.001999 * 16}, 1e-6);
      CHECK_FALSE(st.exp_avg_sq_row().defined());
    }
  }
}

TEST_CASE("CAME: update clipping bounds RMS(u) by clip_threshold", "[optim][came]") {
  // G = (3, −4): u = ±1/sqrt(0.001) = ±31.6228 at step 1.
  //   clip 100: RMS(u)/d = 0.316 < 1, no clipping: m = ±3.16228, W = 1 ∓ 0.316228
  //   clip 10:  divisor 3.16228, û = ±10, m = ±1, W = 1 ∓ 0.1
  //   clip 1:   û = ±1, m = ±0.1, W = 1 ∓ 0.01
  const std::vector<std::pair<double, double>> cases{{100.0, 0.1 * 0.1 / std::sqrt(0.001)}, {10.0, 0.1}, {1.0, 0.01}};
  for (bool fused : {true, false}) {
    Fused mode(fused);
    for (const auto& [clip, move] : cases) {
      INFO("clip " << clip << (fused ? ", fused kernels" : ", ATen path"));
      auto w = param({1, 1}, {2});
      CAME opt({w}, CAMEOptions(0.1).clip_threshold(clip));
      set_grad(w, {3, -4});
      opt.step();
      check_close(w, {1 - move, 1 + move}, 1e-6);
    }
  }
}

TEST_CASE("CAME: save, load and continue equals an uninterrupted run, bitwise", "[optim][came]") {
  // 300x200 is large enough for the fused kernels to split rows over threads.
  const std::vector<std::vector<int64_t>> shapes{{37, 53}, {2, 5, 7}, {13}, {300, 200}, {}};
  for (bool fused : {true, false}) {
    INFO((fused ? "fused kernels" : "ATen path"));
    Fused mode(fused);
    vcycle::test::ScopedThreads threads(2);
    check_resume_bitwise(
        [](std::vector<torch::Tensor> p) {
          return std::make_unique<CAME>(p, CAMEOptions(1e-3).weight_decay(0.01));
        },
        shapes, 3, 3);
  }
}

TEST_CASE("CAME: state is fp32 and takes mn + 2(m+n) floats per matrix", "[optim][came]") {
  const int64_t m = 7, n = 5;
  auto w = torch::randn({m, n}).set_requires_grad(true);
  auto b = torch::randn({n}).set_requires_grad(true);
  CAME opt(std::vector<torch::Tensor>{w, b});
  CHECK(vcycle::optim::state_bytes(opt) == 0);  // lazily created
  w.mutable_grad() = torch::randn({m, n});
  opt.step();
  CHECK(vcycle::optim::state_bytes(opt) == 4 * (m * n + 2 * (m + n)));
  b.mutable_grad() = torch::randn({n});
  opt.step();
  CHECK(vcycle::optim::state_bytes(opt) == 4 * (m * n + 2 * (m + n)) + 4 * 2 * n);  // 1-D: m and v

  // AdamW on the same matrix: 2mn floats
  auto w2 = torch::randn({m, n}).set_requires_grad(true);
  torch::optim::AdamW adamw(std::vector<torch::Tensor>{w2});
  w2.mutable_grad() = torch::randn({m, n});
  adamw.step();
  CHECK(vcycle::optim::state_bytes(adamw) == 4 * 2 * m * n);
}

TEST_CASE("CAME: each parameter group keeps its own lr and weight decay", "[optim][came]") {
  check_groups_independent<CAME>(CAMEOptions(0.1), CAMEOptions(0.01).weight_decay(0.5), CAMEOptions(0.5));
}

TEST_CASE("CAME: bf16 and fp16 parameters get fp32 state and fp32 math", "[optim][came]") {
  check_low_precision<CAME, CAMEOptions, vcycle::optim::CAMEParamState>(CAMEOptions(1e-2).weight_decay(0.1));
}

TEST_CASE("CAME: fused kernels match the ATen path and ignore the thread count", "[optim][came]") {
  check_fused_matches_aten<CAME>(CAMEOptions(1e-2).weight_decay(0.1));
}

TEST_CASE("CAME: invalid hyperparameters and sparse gradients are refused", "[optim][came]") {
  auto w = torch::zeros({2, 3}).set_requires_grad(true);
  using Catch::Matchers::Contains;
  auto make = [&](CAMEOptions o) { CAME opt(std::vector<torch::Tensor>{w}, o); };
  CHECK_THROWS_WITH(make(CAMEOptions(-1)), Contains("lr") && Contains("-1"));
  CHECK_THROWS_WITH(make(CAMEOptions().betas({1.0, 0.999, 0.9999})), Contains("betas[0]") && Contains("1"));
  CHECK_THROWS_WITH(make(CAMEOptions().betas({0.9, -0.1, 0.9999})), Contains("betas[1]") && Contains("-0.1"));
  CHECK_THROWS_WITH(make(CAMEOptions().betas({0.9, 0.999, 1.5})), Contains("betas[2]") && Contains("1.5"));
  CHECK_THROWS_WITH(make(CAMEOptions().eps({0.0, 1e-16})), Contains("eps[0]") && Contains("0"));
  CHECK_THROWS_WITH(make(CAMEOptions().eps({1e-30, -1.0})), Contains("eps[1]") && Contains("-1"));
  CHECK_THROWS_WITH(make(CAMEOptions().clip_threshold(0)), Contains("clip_threshold") && Contains("0"));
  CHECK_THROWS_WITH(make(CAMEOptions().weight_decay(-0.5)), Contains("weight_decay") && Contains("-0.5"));
  CHECK_NOTHROW(make(CAMEOptions(0)));  // lr 0 is valid (warm-up schedules start there)
  // a bad group option is caught too, not only the defaults
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w}, std::make_unique<CAMEOptions>(CAMEOptions().clip_threshold(-2)));
  CHECK_THROWS_WITH(CAME(groups, CAMEOptions()), Contains("clip_threshold") && Contains("-2"));

  CAME opt(std::vector<torch::Tensor>{w});
  w.mutable_grad() = torch::zeros({2, 3}).to_sparse();
  CHECK_THROWS_WITH(opt.step(), Contains("sparse"));
}

TEST_CASE("CAME: least-squares regression converges", "[optim][came]") {
  // 4x8 weights + 4 biases from zero, full-batch gradients (the 1-D path runs on the bias). Over 400
  // steps at lr 1e-2 the loss falls by ~1e-10; a broken factorisation or clipping stalls above 1e-2.
  const double ratio = least_squares_ratio(
      [](torch::Tensor w, torch::Tensor b) {
        return std::make_unique<CAME>(std::vector<torch::Tensor>{w, b}, CAMEOptions(1e-2));
      },
      400);
  INFO("final / initial loss " << ratio);
  CHECK(ratio < 1e-4);
}
