// Adafactor optimizer; the update rule is documented in include/vcycle/optim/adafactor.h.
#include "vcycle/optim/adafactor.h"

#include <algorithm>
#include <cmath>

#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "common.h"
#if VCYCLE_WITH_CUDA
#include <map>

#include "cuda/optim_cuda.h"
#endif
#include "kernels.h"

namespace vcycle::optim {

// ---- options and state ----------------------------------------------------------------------------

AdafactorOptions::AdafactorOptions(double lr) : lr_(lr) {}

void AdafactorOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(clip_threshold);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(decay_rate);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(scale_parameter);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(relative_step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(warmup_init);
}

void AdafactorOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(eps_t, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, clip_threshold);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, decay_rate);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, scale_parameter);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, relative_step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, warmup_init);
}

double AdafactorOptions::get_lr() const { return lr(); }
void AdafactorOptions::set_lr(const double lr) { this->lr(lr); }

void AdafactorParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_row);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_col);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void AdafactorParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_row);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_col);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

void check_options(const AdafactorOptions& o) {
  using detail::finite;
  TORCH_CHECK(finite(o.lr()) && o.lr() >= 0, "Adafactor: invalid lr: ", o.lr(), " (must be >= 0)");
  TORCH_CHECK(!(o.relative_step() && o.lr() > 0), "Adafactor: lr = ", o.lr(),
              " cannot be combined with relative_step = true (the step size is then computed from the step count); "
              "set relative_step = false to use lr");
  TORCH_CHECK(!(o.warmup_init() && !o.relative_step()),
              "Adafactor: warmup_init = true requires relative_step = true (relative_step is false)");
  const auto [e1, e2] = o.eps();
  TORCH_CHECK(finite(e1) && e1 > 0, "Adafactor: invalid eps[0] (eps1): ", e1, " (must be > 0)");
  TORCH_CHECK(finite(e2) && e2 > 0, "Adafactor: invalid eps[1] (eps2): ", e2, " (must be > 0)");
  TORCH_CHECK(finite(o.clip_threshold()) && o.clip_threshold() > 0, "Adafactor: invalid clip_threshold: ",
              o.clip_threshold(), " (must be > 0)");
  TORCH_CHECK(finite(o.decay_rate()) && o.decay_rate() <= 0, "Adafactor: invalid decay_rate: ", o.decay_rate(),
              " (must be <= 0, so that beta2_t = 1 - t^decay_rate stays in [0, 1))");
  TORCH_CHECK(o.beta1() >= 0 && o.beta1() < 1, "Adafactor: invalid beta1: ", o.beta1(), " (must be in [0, 1))");
  TORCH_CHECK(finite(o.weight_decay()) && o.weight_decay() >= 0, "Adafactor: invalid weight_decay: ",
              o.weight_decay(), " (must be >= 0)");
}

// ---- optimizer ------------------------------------------------------------------------------------

Adafactor::Adafactor(std::vector<torch::optim::OptimizerParamGroup> param_groups, AdafactorOptions defaults)
    : Optimizer(param_groups, std::make_unique<AdafactorOptions>(defaults)) {
  check_options(defaults);
  detail::restore_group_options<AdafactorOptions>(param_groups_, param_groups, *defaults_, "Adafactor");
  for (const auto& group : param_groups_) check_options(static_cast<const AdafactorOptions&>(group.options()));
}

Adafactor::Adafactor(std::vector<torch::Tensor> params, AdafactorOptions defaults)
    : Adafactor(
          std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
          std::move(defaults)) {}

namespace {

// û ← û / max(1, RMS(û)/d) · α, in place; α is a 0-dim tensor.
void clip_and_scale(torch::Tensor& u, const AdafactorOptions& o, const torch::Tensor& alpha) {
  u.div_((u.norm() / std::sqrt(static_cast<double>(u.numel())) / o.clip_threshold()).clamp_min_(1.0)).mul_(alpha);
}

// Applies the step (û in `u`, or m when beta1 > 0) with decoupled weight decay λ·α.
void apply(detail::Fp32Param& p, AdafactorParamState& s, const AdafactorOptions& o, torch::Tensor& u,
           const torch::Tensor& alpha) {
  const torch::Tensor* step = &u;
  if (o.beta1() > 0) {
    s.exp_avg().mul_(o.beta1()).add_(u, 1 - o.beta1());
    step = &s.exp_avg();
  }
  if (o.weight_decay() != 0) p.w.mul_(1 - o.weight_decay() * alpha);
  p.w.sub_(*step);
}

void adafactor_factored_aten(detail::Fp32Param& p, AdafactorParamState& s, const AdafactorOptions& o, double beta2,
                             const torch::Tensor& alpha) {
  const double eps1 = std::get<0>(o.eps());
  const torch::Tensor& g = p.g;
  torch::Tensor u = at::mul(g, g);  // G²
  s.exp_avg_sq_row().mul_(beta2).add_(u.mean(-1).add_(eps1), 1 - beta2);  // r
  s.exp_avg_sq_col().mul_(beta2).add_(u.mean(-2).add_(eps1), 1 - beta2);  // c
  at::mul_out(u, g, detail::relative_rsqrt(s.exp_avg_sq_row()).unsqueeze(-1));
  u.mul_(s.exp_avg_sq_col().rsqrt().unsqueeze(-2));
  clip_and_scale(u, o, alpha);
  apply(p, s, o, u, alpha);
}

void adafactor_vector_aten(detail::Fp32Param& p, AdafactorParamState& s, const AdafactorOptions& o, double beta2,
                           const torch::Tensor& alpha) {
  const double eps1 = std::get<0>(o.eps());
  torch::Tensor u = at::mul(p.g, p.g).add_(eps1);  // U
  s.exp_avg_sq().mul_(beta2).add_(u, 1 - beta2);
  at::rsqrt_out(u, s.exp_avg_sq()).mul_(p.g);
  clip_and_scale(u, o, alpha);
  apply(p, s, o, u, alpha);
}

}  // namespace

namespace {

// ρ (the relative or given step size) and β2ₜ at step t.
std::pair<double, double> step_schedule(const AdafactorOptions& o, int64_t step) {
  const auto t = static_cast<double>(step);
  const double rho = o.relative_step() ? std::min(o.warmup_init() ? 1e-6 * t : 1e-2, 1.0 / std::sqrt(t)) : o.lr();
  return {rho, 1.0 - std::pow(t, o.decay_rate())};
}

}  // namespace

torch::Tensor Adafactor::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const AdafactorOptions&>(group.options());
    check_options(o);
#if VCYCLE_WITH_CUDA
    std::map<int64_t, detail::CudaBatch> cuda_batches;  // fp32 CUDA parameters by step count (ρ, β2ₜ)
#endif
    for (auto& param : group.params()) {
      if (!param.grad().defined()) continue;
      detail::check_grad(param, param.grad(), "Adafactor");
      const bool factored = param.dim() >= 2;
      const bool first_moment = o.beta1() > 0;
      const auto key = detail::state_key(param);
      if (state_.find(key) == state_.end()) {
        auto st = std::make_unique<AdafactorParamState>();
        const auto f32 = param.options().dtype(torch::kFloat).memory_format(torch::MemoryFormat::Contiguous);
        if (first_moment) st->exp_avg(torch::zeros(param.sizes(), f32));
        if (factored) {
          const auto sizes = param.sizes();
          std::vector<int64_t> row(sizes.begin(), sizes.end() - 1);
          std::vector<int64_t> col(sizes.begin(), sizes.end() - 2);
          col.push_back(sizes.back());
          st->exp_avg_sq_row(torch::zeros(row, f32));
          st->exp_avg_sq_col(torch::zeros(col, f32));
        } else {
          st->exp_avg_sq(torch::zeros(param.sizes(), f32));
        }
        state_[key] = std::move(st);
      }
      auto& s = static_cast<AdafactorParamState&>(*state_[key]);
      // a group whose beta1 became > 0 after the state was made gets its m now
      if (first_moment && !s.exp_avg().defined())
        s.exp_avg(torch::zeros(param.sizes(), param.options().dtype(torch::kFloat)));
      TORCH_CHECK(!first_moment || s.exp_avg().sizes() == param.sizes(),
                  "Adafactor: state does not match the parameter of shape ", param.sizes());
      TORCH_CHECK(factored ? s.exp_avg_sq_col().defined() : s.exp_avg_sq().defined(),
                  "Adafactor: state lacks the ", factored ? "factored" : "1-D",
                  " second moments for a parameter of shape ", param.sizes());
      for (auto* t : {&s.exp_avg(), &s.exp_avg_sq_row(), &s.exp_avg_sq_col(), &s.exp_avg_sq()})
        detail::to_device_of(*t, param);
      s.step(s.step() + 1);
      if (param.numel() == 0) continue;
#if VCYCLE_WITH_CUDA
      if (detail::cuda_kernel_ok({&param, &param.grad()})) {
        auto& batch = cuda_batches[s.step()];
        if (factored)
          batch.add_factored(param, param.grad(), s.exp_avg(), s.exp_avg_sq_row(), s.exp_avg_sq_col());
        else
          batch.add_flat(param, param.grad(), s.exp_avg(), s.exp_avg_sq());
        continue;
      }
#endif

      detail::Fp32Param p(param, param.grad());
      const auto [rho, beta2] = step_schedule(o, s.step());
      const double eps2 = std::get<1>(o.eps());
      torch::Tensor alpha;  // 0-dim, on the parameter's device
      if (o.scale_parameter())
        alpha = (p.w.norm() / std::sqrt(static_cast<double>(p.w.numel()))).clamp_min_(eps2).mul_(rho);
      else
        alpha = torch::scalar_tensor(rho, p.w.options());
      torch::Tensor* m = first_moment ? &s.exp_avg() : nullptr;
      const bool fused = factored ? detail::fused_ok({&p.w, &p.g, &s.exp_avg_sq_row(), &s.exp_avg_sq_col()})
                                  : detail::fused_ok({&p.w, &p.g, &s.exp_avg_sq()});
      if (fused && (m == nullptr || detail::fused_ok({m}))) {
        const float a = alpha.item<float>();
        const detail::AdafactorStep h{static_cast<float>(beta2),
                                      static_cast<float>(1 - beta2),
                                      static_cast<float>(std::get<0>(o.eps())),
                                      static_cast<float>(o.clip_threshold()),
                                      a,
                                      static_cast<float>(o.beta1()),
                                      static_cast<float>(1 - o.beta1()),
                                      static_cast<float>(1.0 - o.weight_decay() * static_cast<double>(a))};
        float* m_ptr = m == nullptr ? nullptr : m->data_ptr<float>();
        if (factored) {
          const int64_t M = param.size(-2), N = param.size(-1);
          detail::adafactor_factored(p.w.data_ptr<float>(), p.g.data_ptr<float>(), m_ptr,
                                     s.exp_avg_sq_row().data_ptr<float>(), s.exp_avg_sq_col().data_ptr<float>(),
                                     param.numel() / (M * N), M, N, h);
        } else {
          detail::adafactor_vector(p.w.data_ptr<float>(), p.g.data_ptr<float>(), m_ptr,
                                   s.exp_avg_sq().data_ptr<float>(), param.numel(), h);
        }
        p.commit_raw();
      } else {
        if (factored)
          adafactor_factored_aten(p, s, o, beta2, alpha);
        else
          adafactor_vector_aten(p, s, o, beta2, alpha);
        p.commit();
      }
    }
#if VCYCLE_WITH_CUDA
    for (auto& [step, batch] : cuda_batches) {
      const auto [rho, beta2] = step_schedule(o, step);
      batch.adafactor({static_cast<float>(o.beta1()), static_cast<float>(1 - o.beta1()), static_cast<float>(beta2),
                       static_cast<float>(1 - beta2), static_cast<float>(std::get<0>(o.eps())),
                       static_cast<float>(std::get<1>(o.eps())), static_cast<float>(o.clip_threshold()),
                       static_cast<float>(rho), o.scale_parameter() ? 1 : 0, static_cast<float>(o.weight_decay())});
    }
#endif
  }
  return loss;
}

template <typename Self, typename Archive>
void Adafactor::serialize(Self& self, Archive& archive) {
  _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(Adafactor);
}

void Adafactor::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }
void Adafactor::load(torch::serialize::InputArchive& archive) { serialize(*this, archive); }

}  // namespace vcycle::optim
