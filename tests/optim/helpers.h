// Shared helpers for the optimizer tests: small parameters with set gradients, scalar (double)
// reference arithmetic, and the save → load → continue check.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "test_util.h"
#include "vcycle/optim.h"

// After the torch headers: glog (pulled in by c10) defines its own CHECK, and Catch's must win.
#include <catch2/catch.hpp>

namespace optim_test {

// A leaf fp32 parameter with the given values and shape.
inline torch::Tensor param(const std::vector<double>& values, std::vector<int64_t> shape,
                           torch::ScalarType dtype = torch::kFloat) {
  return torch::tensor(values, torch::kDouble).reshape(shape).to(dtype).set_requires_grad(true);
}

inline void set_grad(torch::Tensor& p, const std::vector<double>& values) {
  p.mutable_grad() = torch::tensor(values, torch::kDouble).reshape(p.sizes()).to(p.scalar_type());
}

inline std::vector<double> values(const torch::Tensor& t) {
  auto d = t.detach().to(torch::kDouble).contiguous().reshape({-1});
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

// Every entry of `actual` within rel·|expected| + abs of `expected`.
inline void check_close(const torch::Tensor& actual, const std::vector<double>& expected, double rel,
                        double abs = 0.0) {
  const auto a = values(actual);
  REQUIRE(a.size() == expected.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("entry " << i << ": got " << a[i] << ", expected " << expected[i]);
    CHECK(a[i] == Approx(expected[i]).epsilon(rel).margin(abs));
  }
}

// Turns the fused CPU kernels off (or on) for a scope.
struct Fused {
  explicit Fused(bool on) : saved(vcycle::optim::fused_cpu_kernels()) { vcycle::optim::set_fused_cpu_kernels(on); }
  ~Fused() { vcycle::optim::set_fused_cpu_kernels(saved); }
  bool saved;
};

using MakeOptimizer = std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<torch::Tensor>)>;

// Random parameters of `shapes` and a gradient per step, from a fixed seed.
struct Run {
  std::vector<torch::Tensor> init;
  std::vector<std::vector<torch::Tensor>> grads;  // [step][param]
  Run(const std::vector<std::vector<int64_t>>& shapes, int steps, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    for (const auto& s : shapes) init.push_back(at::randn(s, gen, torch::kFloat));
    for (int k = 0; k < steps; ++k) {
      std::vector<torch::Tensor> g;
      for (const auto& s : shapes) g.push_back(at::randn(s, gen, torch::kFloat));
      grads.push_back(g);
    }
  }
  std::vector<torch::Tensor> fresh(torch::ScalarType dtype = torch::kFloat) const {
    std::vector<torch::Tensor> out;
    for (const auto& t : init) out.push_back(t.to(dtype).clone().set_requires_grad(true));
    return out;
  }
  void step(torch::optim::Optimizer& opt, std::vector<torch::Tensor>& params, int k) const {
    for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[k][i].to(params[i].scalar_type());
    opt.step();
  }
};

// Uninterrupted run of n1 + n2 steps vs n1 steps, save_state, a new optimizer over a copy of the
// parameters, load_state, n2 steps: parameters and state size must agree bitwise.
inline void check_resume_bitwise(const MakeOptimizer& make, const std::vector<std::vector<int64_t>>& shapes,
                                 int n1, int n2) {
  Run run(shapes, n1 + n2, 99);
  auto straight = run.fresh();
  auto opt_a = make(straight);
  for (int k = 0; k < n1 + n2; ++k) run.step(*opt_a, straight, k);

  auto first = run.fresh();
  auto opt_b = make(first);
  for (int k = 0; k < n1; ++k) run.step(*opt_b, first, k);
  const std::string bytes = vcycle::optim::save_state(*opt_b);
  opt_b.reset();
  std::vector<torch::Tensor> resumed;
  for (const auto& p : first) resumed.push_back(p.detach().clone().set_requires_grad(true));
  auto opt_c = make(resumed);
  vcycle::optim::load_state(*opt_c, bytes);
  for (int k = n1; k < n1 + n2; ++k) run.step(*opt_c, resumed, k);

  CHECK(vcycle::optim::state_bytes(*opt_c) == vcycle::optim::state_bytes(*opt_a));
  for (size_t i = 0; i < straight.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::equal(straight[i], resumed[i]));
    CHECK_FALSE(torch::equal(straight[i], run.init[i]));  // the steps did move it
  }
}

// Identical parameters and gradients in two groups with options `a` and `b`: each group must end
// bitwise where a one-group optimizer with its options puts it, and the two must differ.
template <class Opt, class Options>
void check_groups_independent(const Options& a, const Options& b, const Options& defaults) {
  Run run({{4, 6}, {6}}, 3, 7);
  auto pa = run.fresh(), pb = run.fresh();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(pa, std::make_unique<Options>(a));
  groups.emplace_back(pb, std::make_unique<Options>(b));
  Opt both(groups, defaults);
  REQUIRE(static_cast<const Options&>(both.param_groups()[0].options()).lr() == a.lr());
  REQUIRE(static_cast<const Options&>(both.param_groups()[1].options()).weight_decay() == b.weight_decay());
  auto qa = run.fresh(), qb = run.fresh();
  Opt only_a(qa, a), only_b(qb, b);
  for (int k = 0; k < 3; ++k) {
    for (size_t i = 0; i < pa.size(); ++i) {
      pa[i].mutable_grad() = run.grads[k][i];
      pb[i].mutable_grad() = run.grads[k][i];
    }
    both.step();
    run.step(only_a, qa, k);
    run.step(only_b, qb, k);
  }
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO("parameter " << i);
    CHECK(torch::equal(pa[i], qa[i]));
    CHECK(torch::equal(pb[i], qb[i]));
    CHECK_FALSE(torch::allclose(pa[i], pb[i]));
  }
}

// bf16 / fp16 parameters: state stays fp32, the parameter keeps its dtype, and the result matches
// fp32 steps that round the parameter to the low dtype after each step (as the optimizer does),
// within that dtype's precision.
template <class Opt, class Options, class State>
void check_low_precision(const Options& options) {
  Run run({{16, 24}, {24}}, 3, 11);
  for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
    for (bool fused : {true, false}) {
      INFO(dtype << (fused ? ", fused kernels" : ", ATen path"));
      Fused mode(fused);
      auto low = run.fresh(dtype);
      Opt opt(low, options);
      for (int k = 0; k < 3; ++k) run.step(opt, low, k);
      for (const auto& item : opt.state()) {
        auto& st = static_cast<State&>(*item.second);
        for (const auto* t : {&st.exp_avg(), &st.exp_avg_sq()})
          if (t->defined()) CHECK(t->scalar_type() == torch::kFloat);
      }
      CHECK(low[0].scalar_type() == dtype);
      std::vector<torch::Tensor> ref;
      for (const auto& t : run.init) ref.push_back(t.to(dtype).to(torch::kFloat).set_requires_grad(true));
      Opt ref_opt(ref, options);
      for (int k = 0; k < 3; ++k) {
        for (size_t i = 0; i < ref.size(); ++i) ref[i].mutable_grad() = run.grads[k][i].to(dtype).to(torch::kFloat);
        ref_opt.step();
        torch::NoGradGuard ng;
        for (auto& t : ref) t.copy_(t.to(dtype).to(torch::kFloat));
      }
      for (size_t i = 0; i < ref.size(); ++i) {
        // bf16 keeps 8 significant bits: one rounding step apart at most (2^-7 relative)
        CHECK(torch::allclose(low[i].to(torch::kFloat), ref[i], 1e-2, 1e-3));
        CHECK_FALSE(torch::equal(low[i].to(torch::kFloat), run.init[i].to(dtype).to(torch::kFloat)));
      }
    }
  }
}

// The fused CPU kernels against the ATen path (same math, other float32 summation orders), and the
// fused kernels with 1 vs 2 threads (bitwise).
template <class Opt, class Options>
void check_fused_matches_aten(const Options& options) {
  const std::vector<std::vector<int64_t>> shapes{{37, 53}, {3, 9, 17}, {300, 200}, {1, 5}, {5, 1}, {29}};
  Run run(shapes, 5, 3);
  auto with = [&](bool fused, int threads) -> std::vector<torch::Tensor> {
    Fused mode(fused);
    vcycle::test::ScopedThreads t(threads);
    auto p = run.fresh();
    Opt opt(p, options);
    for (int k = 0; k < 5; ++k) run.step(opt, p, k);
    return p;
  };
  const auto fused1 = with(true, 1), fused2 = with(true, 2), aten = with(false, 2);
  for (size_t i = 0; i < shapes.size(); ++i) {
    INFO("shape " << run.init[i].sizes());
    CHECK(torch::equal(fused1[i], fused2[i]));
    // the moves agree to ~1e-5 relative; 1e-4 leaves room, far below any real discrepancy
    const torch::Tensor move_fused = fused2[i] - run.init[i], move_aten = aten[i] - run.init[i];
    CHECK(torch::allclose(move_fused, move_aten, 1e-4, 1e-6));
    // and the parameters themselves within 1e-6 of their largest entry
    const double rel = (fused2[i] - aten[i]).abs().max().item().toDouble() / aten[i].abs().max().item().toDouble();
    INFO("max |fused − ATen| / max |W| = " << rel);
    CHECK(rel <= 1e-6);
    CHECK(move_aten.abs().max().item<double>() > 1e-3);
  }
}

// Least squares: y = x·Wᵀ + b with random W*, b*; returns final loss / initial loss after `steps`.
inline double least_squares_ratio(
    const std::function<std::unique_ptr<torch::optim::Optimizer>(torch::Tensor w, torch::Tensor b)>& make,
    int steps) {
  torch::manual_seed(5);
  const auto x = torch::randn({128, 8});
  const auto w_true = torch::randn({4, 8}), b_true = torch::randn({4});
  const auto y = torch::mm(x, w_true.t()) + b_true;
  auto w = torch::zeros({4, 8}).set_requires_grad(true), b = torch::zeros({4}).set_requires_grad(true);
  auto opt = make(w, b);
  auto loss_of = [&] { return (torch::mm(x, w.t()) + b - y).pow(2).mean(); };
  const double initial = loss_of().item<double>();
  for (int s = 0; s < steps; ++s) {
    opt->zero_grad();
    auto loss = loss_of();
    loss.backward();
    opt->step();
  }
  return loss_of().item<double>() / initial;
}

}  // namespace optim_test
