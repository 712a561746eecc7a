// Multi-tensor CUDA optimizer kernels against the per-tensor ATen path on the same GPU (compiled
// into the suite only by a VCYCLE_WITH_CUDA build; it fails, rather than skips, without a GPU).
#include <torch/cuda.h>
#include <torch/torch.h>

#include "vcycle/optim.h"
#include "vcycle/optim/fused.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle::optim;

namespace {

// Shapes that exercise batched matrices, rows longer than a block, vectors across chunk edges.
std::vector<torch::Tensor> make_params() {
  torch::manual_seed(3);
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  std::vector<torch::Tensor> ps;
  for (auto shape : std::vector<std::vector<int64_t>>{{7, 5}, {3, 4, 300}, {768, 3072}, {9000}, {1}, {64}})
    ps.push_back((torch::randn(shape, cuda) * 0.02).requires_grad_());
  return ps;
}

template <class Make>
void compare(const Make& make) {
  REQUIRE(torch::cuda::is_available());
  auto fused = make_params(), reference = make_params();
  auto opt_fused = make(fused), opt_reference = make(reference);
  for (int step = 0; step < 4; ++step) {
    torch::manual_seed(100 + step);
    for (size_t i = 0; i < fused.size(); ++i) {
      const auto g = torch::randn_like(fused[i]) * (step + 1);
      fused[i].mutable_grad() = g.clone();
      reference[i].mutable_grad() = g.clone();
    }
    set_fused_cpu_kernels(true);
    opt_fused->step();
    set_fused_cpu_kernels(false);  // the switch also routes CUDA parameters to the ATen path
    opt_reference->step();
    set_fused_cpu_kernels(true);
  }
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO("parameter " << i << " of shape " << fused[i].sizes());
    const double scale = reference[i].abs().max().item<double>();
    CHECK((fused[i] - reference[i]).abs().max().item<double>() <= 1e-6 * scale);
  }
}

}  // namespace

TEST_CASE("CUDA multi-tensor CAME equals the per-tensor path", "[optim][cuda]") {
  compare([](auto& ps) { return std::make_unique<CAME>(ps, CAMEOptions(1e-3).weight_decay(0.01)); });
}

TEST_CASE("CUDA multi-tensor LAMB equals the per-tensor path", "[optim][cuda]") {
  compare([](auto& ps) { return std::make_unique<LAMB>(ps, LAMBOptions(1e-2)); });
}

TEST_CASE("CUDA multi-tensor Adafactor equals the per-tensor path", "[optim][cuda]") {
  compare([](auto& ps) { return std::make_unique<Adafactor>(ps, AdafactorOptions().beta1(0.9)); });
}
