// CAME: Confidence-guided Adaptive Memory Efficient optimizer (Luo et al., ACL 2023,
// arXiv 2307.02047), following the authors' pip package `came-pytorch`.
//
//   vcycle::optim::CAME opt(model->parameters(), vcycle::optim::CAMEOptions(2e-4).weight_decay(0.01));
//   loss.backward(); opt.step();
//
// Per parameter W with gradient G (no bias correction anywhere):
//   U = G² + ε1
//   factored (W.dim() >= 2, over the last two dims; leading dims are batch dims):
//     r ← β2·r + (1−β2)·mean_{-1}(U);   c ← β2·c + (1−β2)·mean_{-2}(U)
//     u = G · rsqrt(r / mean_{-1}(r)) · rsqrt(c)
//   1-D: v ← β2·v + (1−β2)·U;  u = G · rsqrt(v)
//   û = u / max(1, RMS(u) / d);   m ← β1·m + (1−β1)·û
//   factored: I = (û − m)² + ε2;  R ← β3·R + (1−β3)·mean_{-1}(I);  C ← β3·C + (1−β3)·mean_{-2}(I)
//             S = m · rsqrt(R / mean_{-1}(R)) · rsqrt(C)
//   1-D: S = m
//   W ← W − η·λ·W (when λ ≠ 0);   W ← W − η·S
// State is fp32 whatever the parameter dtype: m (numel) plus r, c, R, C (factored) or v (1-D), so
// an m×n matrix holds mn + 2(m+n) floats against AdamW's 2mn.
// Known behaviour (not a bug): R and C start at zero, so the first steps on matrices move about
// 10·η per entry — use warmup; with a constant gradient I → 0 and the steps grow large.
//
// On the CPU, fp32 contiguous parameters take fused kernels (four passes over memory per matrix);
// everything else (GPU, bf16/fp16, strided) runs the same math as ATen in-place ops.
#pragma once

#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

namespace vcycle::optim {

struct CAMEOptions : public torch::optim::OptimizerCloneableOptions<CAMEOptions> {
  CAMEOptions(double lr = 2e-4);  // NOLINT: implicit on purpose, as LibTorch's own options
  TORCH_ARG(double, lr) = 2e-4;                          // η
  typedef std::tuple<double, double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999, 0.9999);  // (β1, β2, β3)
  typedef std::tuple<double, double> eps_t;
  TORCH_ARG(eps_t, eps) = std::make_tuple(1e-30, 1e-16);  // (ε1 for G², ε2 for the instability)
  TORCH_ARG(double, clip_threshold) = 1.0;               // d, update clipping by RMS
  TORCH_ARG(double, weight_decay) = 0.0;                 // λ, decoupled

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
  ~CAMEOptions() override = default;
};

struct CAMEParamState : public torch::optim::OptimizerCloneableParamState<CAMEParamState> {
  TORCH_ARG(int64_t, step) = 0;             // updates applied so far
  TORCH_ARG(torch::Tensor, exp_avg);        // m, shape of the parameter
  TORCH_ARG(torch::Tensor, exp_avg_sq_row); // r, shape[:-1]            (factored)
  TORCH_ARG(torch::Tensor, exp_avg_sq_col); // c, shape[:-2]+shape[-1:] (factored)
  TORCH_ARG(torch::Tensor, exp_avg_res_row);// R, shape[:-1]            (factored)
  TORCH_ARG(torch::Tensor, exp_avg_res_col);// C, shape[:-2]+shape[-1:] (factored)
  TORCH_ARG(torch::Tensor, exp_avg_sq);     // v, shape of the parameter (1-D)

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  ~CAMEParamState() override = default;
};

class CAME : public torch::optim::Optimizer {
 public:
  explicit CAME(std::vector<torch::optim::OptimizerParamGroup> param_groups, CAMEOptions defaults = {});
  explicit CAME(std::vector<torch::Tensor> params, CAMEOptions defaults = {});

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive);
};

// Throws (TORCH_CHECK, naming the option and value) unless `options` are valid.
void check_options(const CAMEOptions& options);

}  // namespace vcycle::optim
