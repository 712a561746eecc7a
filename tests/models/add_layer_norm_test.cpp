// The fused residual add + LayerNorm (src/models/add_layer_norm.cpp) against `x + r` then
// torch::layer_norm: h, y and the gradients of x, r, weight and bias, in fp64 (the two differ by
// rounding only, ~1e-14 on the weight gradient's sums over rows, so 1e-10 catches any real error),
// in fp32 and with bf16 inputs.

#include <sstream>
#include <tuple>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "vcycle/models/add_layer_norm.h"

#include "test_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

struct Inputs {
  torch::Tensor x, r, w, b, gh, gy;  // gh, gy: upstream gradients of h and y
};

Inputs inputs(std::vector<int64_t> shape, torch::ScalarType dtype) {
  const int64_t d = shape.back();
  Inputs in;
  in.x = torch::randn(shape, torch::kDouble).to(dtype).requires_grad_();
  in.r = torch::randn(shape, torch::kDouble).to(dtype).requires_grad_();
  in.w = (1 + 0.5 * torch::randn({d}, torch::kDouble)).to(dtype).requires_grad_();
  in.b = torch::randn({d}, torch::kDouble).to(dtype).requires_grad_();
  in.gh = torch::randn(shape, torch::kDouble);
  in.gy = torch::randn(shape, torch::kDouble);
  return in;
}

// Largest differences of h, y, dx, dr, dw, db between the fused op and the reference in `ref_dtype`;
// `use_h` / `use_y`: whether that output reaches the loss.
std::vector<double> compare(const Inputs& in, torch::ScalarType ref_dtype, bool use_h = true, bool use_y = true) {
  const double eps = 1e-5;
  const std::vector<torch::Tensor> leaves{in.x, in.r, in.w, in.b};
  auto [h, y] = add_layer_norm(in.x, in.r, in.w, in.b, eps);
  REQUIRE(h.sizes() == in.x.sizes());
  REQUIRE(y.sizes() == in.x.sizes());
  auto loss = [&](const torch::Tensor& hh, const torch::Tensor& yy) {
    torch::Tensor l = torch::zeros({}, torch::kDouble);
    if (use_h) l = l + (hh.to(torch::kDouble) * in.gh).sum();
    if (use_y) l = l + (yy.to(torch::kDouble) * in.gy).sum();
    return l;
  };
  const auto g = torch::autograd::grad({loss(h, y)}, leaves);
  std::vector<torch::Tensor> ref;
  for (const auto& t : leaves) ref.push_back(t.detach().to(ref_dtype).requires_grad_());
  const auto rh = ref[0] + ref[1];
  const auto ry = torch::layer_norm(rh, {in.x.size(-1)}, ref[2], ref[3], eps);
  // Unused (with h alone), weight and bias have no reference gradient: the fused op's must be 0.
  const auto rg = torch::autograd::grad({loss(rh, ry)}, ref, {}, {}, false, /*allow_unused=*/true);
  std::vector<double> d{max_diff(h, rh), max_diff(y, ry)};
  for (int i = 0; i < 4; ++i) {
    REQUIRE(g[i].scalar_type() == leaves[i].scalar_type());
    d.push_back(max_diff(g[i], rg[i].defined() ? rg[i] : torch::zeros_like(g[i])));
  }
  return d;
}

std::string show(const std::vector<double>& d) {
  std::ostringstream o;
  o << "h " << d[0] << " y " << d[1] << " dx " << d[2] << " dr " << d[3] << " dw " << d[4] << " db " << d[5];
  return o.str();
}

}  // namespace

TEST_CASE("add_layer_norm matches x + r then layer_norm and their gradients in fp64", "[models][layer_norm]") {
  torch::manual_seed(1);
  test::ScopedThreads threads(2);
  // Rows: one, fewer than a block, several blocks with a short last one; widths 256 and odd ones.
  for (const auto& shape : std::vector<std::vector<int64_t>>{{1, 1, 256}, {2, 7, 37}, {3, 50, 37}, {4, 130, 256}, {9, 1}}) {
    const Inputs in = inputs(shape, torch::kDouble);
    const auto d = compare(in, torch::kDouble);
    INFO("shape " << torch::IntArrayRef(shape) << ": " << show(d));
    for (double x : d) CHECK(x < 1e-10);
  }
  // Only one of the outputs used: h's own gradient alone, or the norm's alone.
  const Inputs in = inputs({3, 40, 24}, torch::kDouble);
  for (bool use_h : {true, false}) {
    const auto d = compare(in, torch::kDouble, use_h, !use_h);
    INFO("use_h " << use_h << ": " << show(d));
    for (double x : d) CHECK(x < 1e-10);
  }
}

TEST_CASE("add_layer_norm in fp32 and bf16 agrees with the fp64 reference to their rounding", "[models][layer_norm]") {
  torch::manual_seed(2);
  {
    const Inputs in = inputs({16, 128, 256}, torch::kFloat);
    const auto d = compare(in, torch::kDouble);
    INFO("fp32: " << show(d));
    // Values of order 1-10: float rounding, ~2e-6 seen; the weight and bias gradients sum 2048 rows
    // (~3e-5 seen).
    for (int i = 0; i < 4; ++i) CHECK(d[i] < 2e-5);
    CHECK(d[4] < 3e-4);
    CHECK(d[5] < 3e-4);
  }
  {
    // bf16 inputs: computed in float, results and gradients rounded to bf16 (2^-9 relative).
    const Inputs in = inputs({4, 32, 64}, torch::kBFloat16);
    auto [h, y] = add_layer_norm(in.x, in.r, in.w, in.b, 1e-5);
    CHECK(y.scalar_type() == torch::kBFloat16);
    const auto d = compare(in, torch::kFloat);
    INFO("bf16: " << show(d));
    for (int i = 0; i < 4; ++i) CHECK(d[i] < 0.06);  // values up to ~8 (0.016-0.02 seen)
    CHECK(d[4] < 0.3);  // sums over 128 rows of up to ~40, rounded to bf16 (0.07-0.09 seen)
    CHECK(d[5] < 0.3);
  }
}

TEST_CASE("add_layer_norm's weight gradient is the same on 1 and 2 threads", "[models][layer_norm]") {
  torch::manual_seed(3);
  const Inputs in = inputs({8, 100, 48}, torch::kFloat);
  auto grads = [&](int n) {
    test::ScopedThreads threads(n);
    auto [h, y] = add_layer_norm(in.x, in.r, in.w, in.b, 1e-5);
    return torch::autograd::grad({(y * in.gy.to(torch::kFloat)).sum()}, {in.w, in.b});
  };
  const auto one = grads(1), two = grads(2);
  CHECK(torch::equal(one[0], two[0]));
  CHECK(torch::equal(one[1], two[1]));
}

TEST_CASE("add_layer_norm refuses mismatched shapes", "[models][layer_norm]") {
  const auto x = torch::randn({2, 8});
  CHECK_THROWS_WITH(add_layer_norm(x, torch::randn({2, 9}), torch::ones({8}), torch::zeros({8}), 1e-5),
                    Catch::Contains("same shape"));
  CHECK_THROWS_WITH(add_layer_norm(x, x, torch::ones({7}), torch::zeros({8}), 1e-5), Catch::Contains("weight and bias"));
}
