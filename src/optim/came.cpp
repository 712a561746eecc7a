// CAME optimizer; the update rule is documented in include/vcycle/optim/came.h.
#include "vcycle/optim/came.h"

#include <cmath>

#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "common.h"
#include "kernels.h"
#if VCYCLE_WITH_CUDA
#include "cuda/optim_cuda.h"
#endif

namespace vcycle::optim {

// ---- options and state ----------------------------------------------------------------------------

CAMEOptions::CAMEOptions(double lr) : lr_(lr) {}

void CAMEOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(betas);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(clip_threshold);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
}

void CAMEOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(betas_t, betas);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(eps_t, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, clip_threshold);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
}

double CAMEOptions::get_lr() const { return lr(); }
void CAMEOptions::set_lr(const double lr) { this->lr(lr); }

void CAMEParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_row);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq_col);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_res_row);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_res_col);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void CAMEParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_row);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq_col);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_res_row);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_res_col);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

void check_options(const CAMEOptions& o) {
  using detail::finite;
  TORCH_CHECK(finite(o.lr()) && o.lr() >= 0, "CAME: invalid lr: ", o.lr(), " (must be >= 0)");
  const auto [b1, b2, b3] = o.betas();
  TORCH_CHECK(b1 >= 0 && b1 < 1, "CAME: invalid betas[0] (beta1): ", b1, " (must be in [0, 1))");
  TORCH_CHECK(b2 >= 0 && b2 < 1, "CAME: invalid betas[1] (beta2): ", b2, " (must be in [0, 1))");
  TORCH_CHECK(b3 >= 0 && b3 < 1, "CAME: invalid betas[2] (beta3): ", b3, " (must be in [0, 1))");
  const auto [e1, e2] = o.eps();
  TORCH_CHECK(finite(e1) && e1 > 0, "CAME: invalid eps[0] (eps1): ", e1, " (must be > 0)");
  TORCH_CHECK(finite(e2) && e2 > 0, "CAME: invalid eps[1] (eps2): ", e2, " (must be > 0)");
  TORCH_CHECK(finite(o.clip_threshold()) && o.clip_threshold() > 0, "CAME: invalid clip_threshold: ",
              o.clip_threshold(), " (must be > 0)");
  TORCH_CHECK(finite(o.weight_decay()) && o.weight_decay() >= 0, "CAME: invalid weight_decay: ", o.weight_decay(),
              " (must be >= 0)");
}

// ---- optimizer ------------------------------------------------------------------------------------

CAME::CAME(std::vector<torch::optim::OptimizerParamGroup> param_groups, CAMEOptions defaults)
    : Optimizer(param_groups, std::make_unique<CAMEOptions>(defaults)) {
  check_options(defaults);
  detail::restore_group_options<CAMEOptions>(param_groups_, param_groups, *defaults_, "CAME");
  for (const auto& group : param_groups_) check_options(static_cast<const CAMEOptions&>(group.options()));
}

CAME::CAME(std::vector<torch::Tensor> params, CAMEOptions defaults)
    : CAME(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
           std::move(defaults)) {}

namespace {

// ATen path, factored: the spec's steps with `tmp` (parameter-sized fp32 scratch) as the only
// full-size temporary, arranged to spare two passes over memory (see the comments).
void came_factored_aten(detail::Fp32Param& p, CAMEParamState& s, const CAMEOptions& o) {
  const auto [beta1, beta2, beta3] = o.betas();
  const auto [eps1, eps2] = o.eps();
  const torch::Tensor& g = p.g;
  torch::Tensor tmp = at::mul(g, g);  // G²
  // U = G² + ε1 enters only through its row and column means
  s.exp_avg_sq_row().mul_(beta2).add_(tmp.mean(-1).add_(eps1), 1 - beta2);  // r
  s.exp_avg_sq_col().mul_(beta2).add_(tmp.mean(-2).add_(eps1), 1 - beta2);  // c
  // u = G·a·b with a = rsqrt(r / mean r), b = rsqrt(c). RMS(u)² = Σ_i a_i² Σ_j G²_ij b_j² / numel
  // comes from one matrix-vector product over G² (no pass over u), and the clipping divisor
  // max(1, RMS(u)/d) is folded into a, so û = G·a·b is written once.
  torch::Tensor a = detail::relative_rsqrt(s.exp_avg_sq_row());
  const torch::Tensor b = s.exp_avg_sq_col().rsqrt();
  const torch::Tensor sum_sq = at::matmul(tmp, (b * b).unsqueeze(-1)).squeeze(-1).mul_(a * a).sum();
  a.div_(sum_sq.div_(static_cast<double>(tmp.numel())).sqrt_().div_(o.clip_threshold()).clamp_min_(1.0));
  at::mul_out(tmp, g, a.unsqueeze(-1)).mul_(b.unsqueeze(-2));  // û
  // m ← β1·m + (1−β1)·û, computed as m + (1−β1)·(û − m); then û − m_new = β1·(û − m_old), so the
  // instability I = (û − m_new)² + ε2 = β1²·(û − m_old)² + ε2
  torch::Tensor& m = s.exp_avg();
  tmp.sub_(m);
  m.add_(tmp, 1 - beta1);
  tmp.square_();
  const double b1_sq = beta1 * beta1;
  s.exp_avg_res_row().mul_(beta3).add_(tmp.mean(-1).mul_(b1_sq).add_(eps2), 1 - beta3);  // R
  s.exp_avg_res_col().mul_(beta3).add_(tmp.mean(-2).mul_(b1_sq).add_(eps2), 1 - beta3);  // C
  // S = m · rsqrt(R / mean R) · rsqrt(C);  W ← W − ηλW − ηS
  if (o.weight_decay() != 0) p.w.mul_(1 - o.lr() * o.weight_decay());
  at::mul_out(tmp, m, detail::relative_rsqrt(s.exp_avg_res_row()).unsqueeze(-1));
  p.w.addcmul_(tmp, s.exp_avg_res_col().rsqrt().unsqueeze(-2), -o.lr());
}

// ATen path, 1-D: v ← β2·v + (1−β2)·U;  u = G·rsqrt(v);  clip;  m;  S = m.
void came_vector_aten(detail::Fp32Param& p, CAMEParamState& s, const CAMEOptions& o) {
  const auto [beta1, beta2, beta3] = o.betas();
  const double eps1 = std::get<0>(o.eps());
  const torch::Tensor& g = p.g;
  torch::Tensor tmp = at::mul(g, g).add_(eps1);  // U
  s.exp_avg_sq().mul_(beta2).add_(tmp, 1 - beta2);
  at::rsqrt_out(tmp, s.exp_avg_sq()).mul_(g);  // u
  tmp.div_((tmp.norm() / std::sqrt(static_cast<double>(tmp.numel())) / o.clip_threshold()).clamp_min_(1.0));
  s.exp_avg().mul_(beta1).add_(tmp, 1 - beta1);
  if (o.weight_decay() != 0) p.w.mul_(1 - o.lr() * o.weight_decay());
  p.w.add_(s.exp_avg(), -o.lr());  // S = m (read, never aliased into an update buffer)
}

}  // namespace

torch::Tensor CAME::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const CAMEOptions&>(group.options());
    check_options(o);
    const auto [beta1, beta2, beta3] = o.betas();
    const auto [eps1, eps2] = o.eps();
#if VCYCLE_WITH_CUDA
    detail::CudaBatch cuda_batch;  // fp32 CUDA parameters of this group, updated in one launch
#endif
    for (auto& param : group.params()) {
      if (!param.grad().defined()) continue;
      detail::check_grad(param, param.grad(), "CAME");
      const bool factored = param.dim() >= 2;
      const auto key = detail::state_key(param);
      if (state_.find(key) == state_.end()) {
        auto st = std::make_unique<CAMEParamState>();
        const auto f32 = param.options().dtype(torch::kFloat).memory_format(torch::MemoryFormat::Contiguous);
        st->exp_avg(torch::zeros(param.sizes(), f32));
        if (factored) {
          const auto sizes = param.sizes();
          std::vector<int64_t> row(sizes.begin(), sizes.end() - 1);
          std::vector<int64_t> col(sizes.begin(), sizes.end() - 2);
          col.push_back(sizes.back());
          st->exp_avg_sq_row(torch::zeros(row, f32));
          st->exp_avg_sq_col(torch::zeros(col, f32));
          st->exp_avg_res_row(torch::zeros(row, f32));
          st->exp_avg_res_col(torch::zeros(col, f32));
        } else {
          st->exp_avg_sq(torch::zeros(param.sizes(), f32));
        }
        state_[key] = std::move(st);
      }
      auto& s = static_cast<CAMEParamState&>(*state_[key]);
      TORCH_CHECK(s.exp_avg().defined() && s.exp_avg().sizes() == param.sizes(),
                  "CAME: state does not match the parameter of shape ", param.sizes());
      TORCH_CHECK(factored ? s.exp_avg_res_col().defined() : s.exp_avg_sq().defined(),
                  "CAME: state lacks the ", factored ? "factored" : "1-D", " second moments for a parameter of shape ",
                  param.sizes());
      for (auto* t : {&s.exp_avg(), &s.exp_avg_sq_row(), &s.exp_avg_sq_col(), &s.exp_avg_res_row(),
                      &s.exp_avg_res_col(), &s.exp_avg_sq()})
        detail::to_device_of(*t, param);
      s.step(s.step() + 1);

#if VCYCLE_WITH_CUDA
      if (detail::cuda_kernel_ok({&param, &param.grad()})) {
        if (factored)
          cuda_batch.add_factored(param, param.grad(), s.exp_avg(), s.exp_avg_sq_row(), s.exp_avg_sq_col(),
                                  s.exp_avg_res_row(), s.exp_avg_res_col());
        else
          cuda_batch.add_flat(param, param.grad(), s.exp_avg(), s.exp_avg_sq());
        continue;
      }
#endif
      detail::Fp32Param p(param, param.grad());
      const detail::CameStep h{static_cast<float>(beta1),
                               static_cast<float>(beta2),
                               static_cast<float>(beta3),
                               static_cast<float>(1 - beta1),
                               static_cast<float>(1 - beta2),
                               static_cast<float>(1 - beta3),
                               static_cast<float>(eps1),
                               static_cast<float>(eps2),
                               static_cast<float>(o.clip_threshold()),
                               static_cast<float>(o.lr()),
                               static_cast<float>(1 - o.lr() * o.weight_decay())};
      if (factored) {
        if (detail::fused_ok({&p.w, &p.g, &s.exp_avg(), &s.exp_avg_sq_row(), &s.exp_avg_sq_col(),
                              &s.exp_avg_res_row(), &s.exp_avg_res_col()})) {
          const int64_t M = param.size(-2), N = param.size(-1);
          const int64_t B = M * N == 0 ? 0 : param.numel() / (M * N);
          if (B > 0) {
            detail::came_factored(p.w.data_ptr<float>(), p.g.data_ptr<float>(), s.exp_avg().data_ptr<float>(),
                                  s.exp_avg_sq_row().data_ptr<float>(), s.exp_avg_sq_col().data_ptr<float>(),
                                  s.exp_avg_res_row().data_ptr<float>(), s.exp_avg_res_col().data_ptr<float>(), B,
                                  M, N, h);
            p.commit_raw();
          }
        } else if (param.numel() > 0) {
          came_factored_aten(p, s, o);
          p.commit();
        }
      } else if (param.numel() > 0) {
        if (detail::fused_ok({&p.w, &p.g, &s.exp_avg(), &s.exp_avg_sq()})) {
          detail::came_vector(p.w.data_ptr<float>(), p.g.data_ptr<float>(), s.exp_avg().data_ptr<float>(),
                              s.exp_avg_sq().data_ptr<float>(), param.numel(), h);
          p.commit_raw();
        } else {
          came_vector_aten(p, s, o);
          p.commit();
        }
      }
    }
#if VCYCLE_WITH_CUDA
    cuda_batch.came({static_cast<float>(beta1), static_cast<float>(beta2), static_cast<float>(beta3),
                     static_cast<float>(1 - beta1), static_cast<float>(1 - beta2), static_cast<float>(1 - beta3),
                     static_cast<float>(eps1), static_cast<float>(eps2), static_cast<float>(o.clip_threshold()),
                     static_cast<float>(o.lr()), static_cast<float>(1 - o.lr() * o.weight_decay())});
#endif
  }
  return loss;
}

template <typename Self, typename Archive>
void CAME::serialize(Self& self, Archive& archive) {
  _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(CAME);
}

void CAME::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }
void CAME::load(torch::serialize::InputArchive& archive) { serialize(*this, archive); }

}  // namespace vcycle::optim
