// LAMB: layer-wise adaptive moments (You et al., ICLR 2020, arXiv 1904.00962), with the semantics
// of TensorFlow Addons' LAMB.
//
//   vcycle::optim::LAMB opt(params, vcycle::optim::LAMBOptions(1e-3).weight_decay(0.01));
//
// Per parameter W with gradient G at step t (from 1):
//   m ← β1·m + (1−β1)·G;   v ← β2·v + (1−β2)·G²
//   m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)          (m̂ = m, v̂ = v when bias_correction is false)
//   u = m̂ / (sqrt(v̂) + eps)
//   u ← u + λ·W                              (when λ ≠ 0)
//   r = ‖W‖/‖u‖ if both > 0, else 1          (layer adaptation; r = 1 when trust_ratio is false)
//   W ← W − η·r·u
// ‖W‖ is taken before the update. State: m and v in fp32 (2 floats per parameter entry).
// The trainer builds the groups: parameters with dim < 2 (biases, norms) and names matched by the
// YAML `no_decay` patterns get λ = 0 and trust_ratio = false (TF-Addons excludes the same
// variables from layer adaptation as from weight decay unless told otherwise).
#pragma once

#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

namespace vcycle::optim {

struct LAMBOptions : public torch::optim::OptimizerCloneableOptions<LAMBOptions> {
  LAMBOptions(double lr = 1e-3);  // NOLINT: implicit on purpose, as LibTorch's own options
  TORCH_ARG(double, lr) = 1e-3;                                  // η
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);       // (β1, β2)
  TORCH_ARG(double, eps) = 1e-6;                                 // added to sqrt(v̂)
  TORCH_ARG(double, weight_decay) = 0.01;                        // λ, added to the update
  TORCH_ARG(bool, bias_correction) = true;                       // divide m, v by 1−βᵗ
  TORCH_ARG(bool, trust_ratio) = true;                           // layer adaptation on

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
  ~LAMBOptions() override = default;
};

struct LAMBParamState : public torch::optim::OptimizerCloneableParamState<LAMBParamState> {
  TORCH_ARG(int64_t, step) = 0;          // t of the last update
  TORCH_ARG(torch::Tensor, exp_avg);     // m
  TORCH_ARG(torch::Tensor, exp_avg_sq);  // v

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  ~LAMBParamState() override = default;
};

class LAMB : public torch::optim::Optimizer {
 public:
  explicit LAMB(std::vector<torch::optim::OptimizerParamGroup> param_groups, LAMBOptions defaults = {});
  explicit LAMB(std::vector<torch::Tensor> params, LAMBOptions defaults = {});

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive);
};

// Throws (TORCH_CHECK, naming the option and value) unless `options` are valid.
void check_options(const LAMBOptions& options);

}  // namespace vcycle::optim
