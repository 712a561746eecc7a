// Adafactor (Shazeer & Stern 2018, arXiv 1804.04235), with the semantics of Hugging Face
// transformers' `Adafactor`.
//
//   vcycle::optim::Adafactor opt(params);                       // relative step sizes, no lr
//   vcycle::optim::Adafactor opt2(params, vcycle::optim::AdafactorOptions(1e-3).relative_step(false));
//
// Per parameter W with gradient G at step t (from 1):
//   ρ = lr, or with relative_step ρ = min(warmup_init ? 1e-6·t : 1e-2, 1/sqrt(t))
//   α = scale_parameter ? ρ·max(ε2, RMS(W)) : ρ;     β2ₜ = 1 − t^decay_rate
//   U = G² + ε1, second moment (factored over the last two dims for dim >= 2, else a full v) and
//   û = u / max(1, RMS(u)/d) exactly as CAME's steps 1–3, with β2ₜ;   û ← α·û
//   with beta1 > 0: m ← β1·m + (1−β1)·û and the step is m; else the step is û (and no m exists)
//   W ← W − λ·α·W (when λ ≠ 0);   W ← W − step
// lr > 0 together with relative_step, or warmup_init without relative_step, is an error.
// State (fp32): r and c (factored) or v (1-D), plus m when beta1 > 0.
#pragma once

#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

namespace vcycle::optim {

struct AdafactorOptions : public torch::optim::OptimizerCloneableOptions<AdafactorOptions> {
  AdafactorOptions(double lr = 0.0);  // NOLINT: implicit on purpose, as LibTorch's own options
  TORCH_ARG(double, lr) = 0.0;                                    // used only without relative_step
  typedef std::tuple<double, double> eps_t;
  TORCH_ARG(eps_t, eps) = std::make_tuple(1e-30, 1e-3);           // (ε1 for G², ε2 floor of RMS(W))
  TORCH_ARG(double, clip_threshold) = 1.0;                        // d, update clipping by RMS
  TORCH_ARG(double, decay_rate) = -0.8;                           // β2ₜ = 1 − t^decay_rate
  TORCH_ARG(double, beta1) = 0.0;                                 // 0: no first moment
  TORCH_ARG(double, weight_decay) = 0.0;                          // λ, scaled by α
  TORCH_ARG(bool, scale_parameter) = true;                        // α = ρ·max(ε2, RMS(W))
  TORCH_ARG(bool, relative_step) = true;                          // ρ from t, not from lr
  TORCH_ARG(bool, warmup_init) = false;                           // ρ = min(1e-6·t, 1/sqrt(t))

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
  ~AdafactorOptions() override = default;
};

struct AdafactorParamState : public torch::optim::OptimizerCloneableParamState<AdafactorParamState> {
  TORCH_ARG(int64_t, step) = 0;              // t of the last update
  TORCH_ARG(torch::Tensor, exp_avg);         // m (only when beta1 > 0)
  TORCH_ARG(torch::Tensor, exp_avg_sq_row);  // r (factored)
  TORCH_ARG(torch::Tensor, exp_avg_sq_col);  // c (factored)
  TORCH_ARG(torch::Tensor, exp_avg_sq);      // v (1-D)

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  ~AdafactorParamState() override = default;
};

class Adafactor : public torch::optim::Optimizer {
 public:
  explicit Adafactor(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdafactorOptions defaults = {});
  explicit Adafactor(std::vector<torch::Tensor> params, AdafactorOptions defaults = {});

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive);
};

// Throws (TORCH_CHECK, naming the option and value) unless `options` are valid.
void check_options(const AdafactorOptions& options);

}  // namespace vcycle::optim
