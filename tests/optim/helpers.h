// Shared helpers for the optimizer tests: small parameters with set gradients, scalar (double)
// reference arithmetic, and the save → load → continue check.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

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

// Sets the intra-op thread count for a scope.
struct Threads {
  explicit Threads(int n) : saved(at::get_num_threads()) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(saved); }
  int saved;
};

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
