// The fused CPU GELU (src/models/fused_gelu.cpp) against torch::gelu, the exact erf GELU: in fp64,
// where the kernel uses the library's erf and exp and the two differ by rounding alone (1e-14 catches
// any error in the derivative or the chunking); in fp32 against the fp64 GELU on a dense grid, to
// the bound of its erf approximation (A&S 7.1.26, |error| ≤ 1.5e-7); in bf16 against the fp32
// kernel rounded by LibTorch and the fp64 GELU; and the dispatch of
// vcycle::gelu. The whole-GPT check with the fused and ATen kernels is in fused_attention_test.cpp.

#include <cmath>

#include <torch/torch.h>

#include "test_util.h"
#include "vcycle/models/cpu_kernels.h"
#include "vcycle/models/fused_gelu.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// GELU and its gradient (of sum(GELU(x) · g)) through f.
template <class F>
std::pair<torch::Tensor, torch::Tensor> value_and_grad(F f, const torch::Tensor& x, const torch::Tensor& g) {
  const auto leaf = x.detach().clone().requires_grad_(true);
  const auto y = f(leaf);
  const auto dx = torch::autograd::grad({y}, {leaf}, {g})[0];
  return {y.detach(), dx};
}

}  // namespace

TEST_CASE("fused GELU and its gradient match torch::gelu in fp64", "[models][gelu]") {
  test::ScopedThreads threads(2);
  torch::manual_seed(7);
  // 70001 elements: more than two parallel chunks of 2^15, and not a multiple of the 256-element block.
  for (const int64_t n : {int64_t{5}, int64_t{70001}}) {
    const auto x = torch::randn({n}, torch::kDouble) * 4;
    const auto g = torch::randn({n}, torch::kDouble);
    const auto [y, dx] = value_and_grad([](const torch::Tensor& t) { return fused_gelu(t); }, x, g);
    const auto [ry, rdx] = value_and_grad([](const torch::Tensor& t) { return torch::gelu(t); }, x, g);
    INFO("n " << n << ": forward " << max_diff(y, ry) << ", gradient " << max_diff(dx, rdx));
    CHECK(max_diff(y, ry) < 1e-14);
    CHECK(max_diff(dx, rdx) < 1e-14);
    CHECK(rdx.abs().max().item<double>() > 0.5);  // the comparison is not between zeros
  }
}

TEST_CASE("fused GELU in fp32 is within its erf approximation's bound of the fp64 GELU", "[models][gelu]") {
  // Every 1/1024 in [-12, 12], where Φ goes from 0 to 1 and e^(−x²/2) underflows float at both ends.
  const auto x64 = torch::arange(-12.0, 12.0, 1.0 / 1024, torch::kDouble);
  const auto ones = torch::ones_like(x64);
  const auto [ry, rdx] = value_and_grad([](const torch::Tensor& t) { return torch::gelu(t); }, x64, ones);
  const auto [y, dx] = value_and_grad([](const torch::Tensor& t) { return fused_gelu(t); }, x64.to(torch::kFloat),
                                      ones.to(torch::kFloat));
  // GELU = x·Φ(x): Φ's error is ½ of erf's 1.5e-7 plus float rounding of values ≤ 1, so |x| times
  // 2e-7; the derivative Φ + x·φ adds x·φ's float rounding.
  const auto scale = x64.abs().clamp_min(1.0);
  const double y_err = ((y.to(torch::kDouble) - ry).abs() / scale).max().item<double>();
  const double dx_err = (dx.to(torch::kDouble) - rdx).abs().max().item<double>();
  INFO("forward error / max(1, |x|): " << y_err << ", gradient error: " << dx_err);
  CHECK(y_err < 2e-7);
  CHECK(dx_err < 3e-7);
  // Far out it is exact: GELU(x) = x above 12 and 0 below -12 to float precision.
  const auto far = torch::tensor({-100.0f, -30.0f, 30.0f, 100.0f});
  CHECK(max_diff(fused_gelu(far), torch::tensor({0.0f, 0.0f, 30.0f, 100.0f})) < 1e-30);
}

TEST_CASE("fused GELU in bf16 is the fp32 kernel's result rounded to nearest, within a bf16 rounding of the fp64 GELU",
          "[models][gelu]") {
  test::ScopedThreads threads(2);
  // The grid of the fp32 test, rounded to bf16 (so inputs are exact in every dtype), and a NaN.
  auto xb = torch::arange(-12.0, 12.0, 1.0 / 1024, torch::kDouble).to(torch::kBFloat16);
  xb = torch::cat({xb, torch::full({1}, std::nan(""), torch::kBFloat16)});
  torch::manual_seed(9);
  const auto gb = torch::randn(xb.sizes()).to(torch::kBFloat16);
  const auto fused = [](const torch::Tensor& t) { return fused_gelu(t); };
  const auto [y, dx] = value_and_grad(fused, xb, gb);
  REQUIRE(y.scalar_type() == torch::kBFloat16);
  REQUIRE(dx.scalar_type() == torch::kBFloat16);
  // The same float arithmetic as the fp32 kernel, then LibTorch's own rounding to bf16: bit-equal,
  // which checks the widening, the rounding (ties to even) and the NaN.
  const auto [y32, dx32] = value_and_grad(fused, xb.to(torch::kFloat), gb.to(torch::kFloat));
  const auto n = xb.size(0) - 1;
  CHECK(torch::equal(y.slice(0, 0, n), y32.slice(0, 0, n).to(torch::kBFloat16)));
  CHECK(torch::equal(dx.slice(0, 0, n), dx32.slice(0, 0, n).to(torch::kBFloat16)));
  CHECK(std::isnan(y[-1].item<float>()));
  CHECK(std::isnan(dx[-1].item<float>()));
  // Against the fp64 GELU of the same inputs: half a bf16 ulp (2^-8 relative: 8 significant bits)
  // plus the fp32 bound.
  const auto x64 = xb.slice(0, 0, n).to(torch::kDouble);
  const auto [ry, rdx] = value_and_grad([](const torch::Tensor& t) { return torch::gelu(t); }, x64,
                                        gb.slice(0, 0, n).to(torch::kDouble));
  const auto scale = x64.abs().clamp_min(1.0);
  const auto y_err = (y.slice(0, 0, n).to(torch::kDouble) - ry).abs() - ry.abs() * std::ldexp(1.0, -8);
  const auto dx_err = (dx.slice(0, 0, n).to(torch::kDouble) - rdx).abs() - rdx.abs() * std::ldexp(1.0, -8);
  INFO("beyond half a bf16 ulp: forward " << (y_err / scale).max().item<double>() << ", gradient "
                                          << (dx_err / scale).max().item<double>());
  CHECK((y_err / scale).max().item<double>() < 3e-7);
  CHECK((dx_err / scale).max().item<double>() < 3e-7);
}

TEST_CASE("fused GELU takes strided inputs and gives the same floats on 1 and 2 threads", "[models][gelu]") {
  torch::manual_seed(8);
  const auto x = torch::randn({300, 257}) * 3;
  const auto g = torch::randn({257, 300});
  const auto fused = [](const torch::Tensor& t) { return fused_gelu(t); };
  auto one = [&] {
    test::ScopedThreads threads(1);
    return value_and_grad(fused, x.t(), g);  // a transposed view: not contiguous
  }();
  auto two = [&] {
    test::ScopedThreads threads(2);
    return value_and_grad(fused, x.t().contiguous(), g);
  }();
  CHECK(torch::equal(one.first, two.first));
  CHECK(torch::equal(one.second, two.second));
  CHECK(one.first.sizes() == x.t().sizes());
  const auto ref = torch::gelu(x.t());
  CHECK(max_diff(one.first, ref) < 1e-5);
}

TEST_CASE("vcycle::gelu takes the fused kernel for fp32, fp64 and bf16 on the CPU unless the ATen kernels are chosen", "[models][gelu]") {
  const auto x = torch::randn({4, 8}, torch::kFloat).requires_grad_(true);
  const auto node = [](const torch::Tensor& t) { return vcycle::gelu(t).grad_fn()->name(); };
  {
    test::ScopedCpuKernels kernels(CpuKernels::fused);
    CHECK(node(x).find("FusedGelu") != std::string::npos);
    CHECK(node(x.to(torch::kDouble)).find("FusedGelu") != std::string::npos);
    CHECK(node(x.to(torch::kBFloat16)).find("FusedGelu") != std::string::npos);
  }
  {
    test::ScopedCpuKernels kernels(CpuKernels::aten);
    CHECK(node(x).find("FusedGelu") == std::string::npos);
  }
  CHECK_THROWS_WITH(fused_gelu(torch::ones({2, 3}, torch::kInt)),
                    Catch::Contains("dtype must be float, double or bfloat16") && Catch::Contains("[2, 3]"));
}
