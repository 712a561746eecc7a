// LAMB optimizer; the update rule is documented in include/vcycle/optim/lamb.h.
#include "vcycle/optim/lamb.h"

#include <cmath>

#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "common.h"
#include "kernels.h"
#if VCYCLE_WITH_CUDA
#include <map>

#include "cuda/optim_cuda.h"
#endif

namespace vcycle::optim {

// ---- options and state ----------------------------------------------------------------------------

LAMBOptions::LAMBOptions(double lr) : lr_(lr) {}

void LAMBOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(betas);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(bias_correction);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(trust_ratio);
}

void LAMBOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(betas_t, betas);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, bias_correction);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, trust_ratio);
}

double LAMBOptions::get_lr() const { return lr(); }
void LAMBOptions::set_lr(const double lr) { this->lr(lr); }

void LAMBParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void LAMBParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

void check_options(const LAMBOptions& o) {
  using detail::finite;
  TORCH_CHECK(finite(o.lr()) && o.lr() >= 0, "LAMB: invalid lr: ", o.lr(), " (must be >= 0)");
  const auto [b1, b2] = o.betas();
  TORCH_CHECK(b1 >= 0 && b1 < 1, "LAMB: invalid betas[0] (beta1): ", b1, " (must be in [0, 1))");
  TORCH_CHECK(b2 >= 0 && b2 < 1, "LAMB: invalid betas[1] (beta2): ", b2, " (must be in [0, 1))");
  TORCH_CHECK(finite(o.eps()) && o.eps() > 0, "LAMB: invalid eps: ", o.eps(), " (must be > 0)");
  TORCH_CHECK(finite(o.weight_decay()) && o.weight_decay() >= 0, "LAMB: invalid weight_decay: ", o.weight_decay(),
              " (must be >= 0)");
}

// ---- optimizer ------------------------------------------------------------------------------------

LAMB::LAMB(std::vector<torch::optim::OptimizerParamGroup> param_groups, LAMBOptions defaults)
    : Optimizer(param_groups, std::make_unique<LAMBOptions>(defaults)) {
  check_options(defaults);
  detail::restore_group_options<LAMBOptions>(param_groups_, param_groups, *defaults_, "LAMB");
  for (const auto& group : param_groups_) check_options(static_cast<const LAMBOptions&>(group.options()));
}

LAMB::LAMB(std::vector<torch::Tensor> params, LAMBOptions defaults)
    : LAMB(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
           std::move(defaults)) {}

torch::Tensor LAMB::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const LAMBOptions&>(group.options());
    check_options(o);
    const auto [beta1, beta2] = o.betas();
#if VCYCLE_WITH_CUDA
    std::map<int64_t, detail::CudaBatch> cuda_batches;  // fp32 CUDA parameters by step count (bias correction)
#endif
    for (auto& param : group.params()) {
      if (!param.grad().defined()) continue;
      detail::check_grad(param, param.grad(), "LAMB");
      const auto key = detail::state_key(param);
      if (state_.find(key) == state_.end()) {
        auto st = std::make_unique<LAMBParamState>();
        const auto f32 = param.options().dtype(torch::kFloat).memory_format(torch::MemoryFormat::Contiguous);
        st->exp_avg(torch::zeros(param.sizes(), f32));
        st->exp_avg_sq(torch::zeros(param.sizes(), f32));
        state_[key] = std::move(st);
      }
      auto& s = static_cast<LAMBParamState&>(*state_[key]);
      TORCH_CHECK(s.exp_avg().defined() && s.exp_avg().sizes() == param.sizes() && s.exp_avg_sq().defined() &&
                      s.exp_avg_sq().sizes() == param.sizes(),
                  "LAMB: state does not match the parameter of shape ", param.sizes());
      detail::to_device_of(s.exp_avg(), param);
      detail::to_device_of(s.exp_avg_sq(), param);
      s.step(s.step() + 1);
      if (param.numel() == 0) continue;
#if VCYCLE_WITH_CUDA
      if (detail::cuda_kernel_ok({&param, &param.grad()})) {
        cuda_batches[s.step()].add_flat(param, param.grad(), s.exp_avg(), s.exp_avg_sq(), o.weight_decay(),
                                        o.trust_ratio());
        continue;
      }
#endif

      detail::Fp32Param p(param, param.grad());
      torch::Tensor& m = s.exp_avg();
      torch::Tensor& v = s.exp_avg_sq();
      const auto t = static_cast<double>(s.step());
      const double bc1 = o.bias_correction() ? 1 - std::pow(beta1, t) : 1.0;
      const double bc2 = o.bias_correction() ? 1 - std::pow(beta2, t) : 1.0;
      if (detail::fused_ok({&p.w, &p.g, &m, &v})) {
        const detail::LambStep h{static_cast<float>(beta1), static_cast<float>(beta2),
                                 static_cast<float>(1 - beta1), static_cast<float>(1 - beta2),
                                 static_cast<float>(bc1), static_cast<float>(bc2), static_cast<float>(o.eps()),
                                 static_cast<float>(o.weight_decay()), o.trust_ratio(), static_cast<float>(o.lr())};
        detail::lamb_update(p.w.data_ptr<float>(), p.g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(),
                            p.w.numel(), h);
        p.commit_raw();
        continue;
      }
      m.mul_(beta1).add_(p.g, 1 - beta1);
      v.mul_(beta2).addcmul_(p.g, p.g, 1 - beta2);
      // u = m̂ / (sqrt(v̂) + eps), built in one scratch tensor
      torch::Tensor u = at::div(v, bc2).sqrt_().add_(o.eps());
      at::div_out(u, m, u);
      if (bc1 != 1.0) u.div_(bc1);
      if (o.weight_decay() != 0) u.add_(p.w, o.weight_decay());
      if (o.trust_ratio()) {
        // r = ‖W‖/‖u‖ when both are > 0, else 1 (kept on the device: no host sync)
        const torch::Tensor w_norm = p.w.norm(), u_norm = u.norm();
        const torch::Tensor ratio =
            at::where(w_norm.gt(0).logical_and(u_norm.gt(0)), w_norm / u_norm, at::ones_like(w_norm));
        p.w.addcmul_(u, ratio, -o.lr());
      } else {
        p.w.add_(u, -o.lr());
      }
      p.commit();
    }
#if VCYCLE_WITH_CUDA
    for (auto& [step, batch] : cuda_batches) {
      const auto t = static_cast<double>(step);
      batch.lamb({static_cast<float>(beta1), static_cast<float>(beta2), static_cast<float>(1 - beta1),
                  static_cast<float>(1 - beta2),
                  static_cast<float>(o.bias_correction() ? 1 - std::pow(beta1, t) : 1.0),
                  static_cast<float>(o.bias_correction() ? 1 - std::pow(beta2, t) : 1.0), static_cast<float>(o.eps()),
                  static_cast<float>(o.lr())});
    }
#endif
  }
  return loss;
}

template <typename Self, typename Archive>
void LAMB::serialize(Self& self, Archive& archive) {
  _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(LAMB);
}

void LAMB::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }
void LAMB::load(torch::serialize::InputArchive& archive) { serialize(*this, archive); }

}  // namespace vcycle::optim
