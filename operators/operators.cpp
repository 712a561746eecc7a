// Coalesce, de-coalesce, interpolate (spec operators.md). See include/vcycle/operators/operators.h.
//
// A width space axis of size c·m·u (c chunks, m units of u elements) is viewed as
//   halves:    (c, k, m/k, u)   — unit g·m/k + i belongs to group i
//   neighbors: (c, m/k, k, u)   — unit k·i + g belongs to group i
// Coalescing reduces the k-dim (sum; divided by k for the out role); de-coalescing views the small
// axis as (c, 1, m, u) / (c, m, 1, u) and expands the 1 to k (divided by k for the in role).
#include "vcycle/operators/operators.h"

#include <cmath>
#include <sstream>

#include <torch/types.h>
#include <torch/utils.h>

#include "resolve.h"
#include "vcycle/core/errors.h"

namespace vcycle {

namespace {

// ---------------------------------------------------------------------------- helpers
// Sum of the slices of x along `dim` (the dim is kept, size 1), as a balanced tree of additions: k
// equal addends then add exactly when k is a power of two, which makes the round trip bitwise.
torch::Tensor tree_sum_dim(torch::Tensor x, int64_t dim) {
  while (x.size(dim) > 1) {
    const int64_t n = x.size(dim), h = n / 2;
    auto s = x.narrow(dim, 0, h) + x.narrow(dim, h, h);
    if (n % 2 != 0) s = torch::cat({s, x.narrow(dim, 2 * h, 1)}, dim);
    x = s;
  }
  return x;
}

// Balanced-tree sum of equally shaped tensors (a fresh tensor when xs.size() >= 2).
torch::Tensor tree_sum(std::vector<torch::Tensor> xs) {
  while (xs.size() > 1) {
    const size_t h = xs.size() / 2;
    std::vector<torch::Tensor> next;
    next.reserve(h + 1);
    for (size_t i = 0; i < h; ++i) next.push_back(xs[i] + xs[i + h]);
    if (xs.size() % 2 != 0) next.push_back(xs.back());
    xs = std::move(next);
  }
  return xs.front();
}

// The role an axis acts with: second moments (mean squares) are averaged / copied on every axis.
AxisRole effective_role(const SpaceAxis& axis, MomentKind kind) {
  return kind == MomentKind::second ? AxisRole::out : axis.role;
}

// Member g (0 … k−1) of group j when n units (or blocks) form n/k groups of k.
int64_t group_member(int64_t j, int64_t g, int64_t n_small, int64_t k, Pairing pairing) {
  return pairing == Pairing::halves ? j + g * n_small : j * k + g;
}

// Sums of k equal addends and divisions by k are exact in binary floating point only when k is a
// power of two. For other k, coalescing accumulates in float64 and rounds once at the end, so that
// coalesce(decoalesce(θ)) is within 1 ulp of θ (a float32 chain of adds and divides can be 2 ulp off).
bool exact_factor(int64_t k) { return (k & (k - 1)) == 0; }

torch::Tensor widen(const torch::Tensor& x, int64_t k) {
  const auto dt = x.scalar_type();
  const bool narrow = dt == torch::kFloat || dt == torch::kHalf || dt == torch::kBFloat16;
  return !exact_factor(k) && narrow ? x.to(torch::kDouble) : x;
}

double int_pow(int64_t k, int64_t e) {
  double r = 1.0;
  for (int64_t i = 0; i < e; ++i) r *= static_cast<double>(k);
  return r;
}

// ---------------------------------------------------------------------------- width
// A width result and whether it is a fresh tensor (false: it is the input itself).
struct Width {
  torch::Tensor t;
  bool fresh;
};

Width width_coalesce(const torch::Tensor& t, const ParamSpec& spec, const ParamMap& map, const CoalesceFactors& f,
                     MomentKind kind) {
  const int64_t k = f.width;
  std::vector<int64_t> view, group_dims, out_sizes;
  int64_t out_axes = 0;
  for (size_t a = 0; a < spec.axes.size(); ++a) {
    const int64_t n = t.size(static_cast<int64_t>(a));
    if (!spec.axes[a] || k == 1) {
      view.push_back(n);
      out_sizes.push_back(n);
      continue;
    }
    const SpaceAxis& ax = *spec.axes[a];
    const int64_t c = ax.chunks, u = map.unit(ax.space), m = n / (c * u);
    view.push_back(c);
    if (f.width_pairing == Pairing::halves) {
      group_dims.push_back(static_cast<int64_t>(view.size()));
      view.push_back(k);
      view.push_back(m / k);
    } else {
      view.push_back(m / k);
      group_dims.push_back(static_cast<int64_t>(view.size()));
      view.push_back(k);
    }
    view.push_back(u);
    out_sizes.push_back(n / k);
    if (effective_role(ax, kind) == AxisRole::out) ++out_axes;
  }
  if (group_dims.empty()) return {t, false};
  auto x = widen(t, k).reshape(view);
  for (int64_t d : group_dims) x = tree_sum_dim(x, d);  // each becomes size 1; later dims keep their index
  x = x.reshape(out_sizes);
  if (out_axes > 0) x.div_(int_pow(k, out_axes));  // mean on out axes; in axes keep the sum
  return {x.to(t.scalar_type()), true};
}

Width width_decoalesce(const torch::Tensor& t, const ParamSpec& spec, const ParamMap& map, const CoalesceFactors& f,
                       MomentKind kind) {
  const int64_t k = f.width;
  std::vector<int64_t> view, expanded, out_sizes;
  int64_t in_axes = 0;
  for (size_t a = 0; a < spec.axes.size(); ++a) {
    const int64_t n = t.size(static_cast<int64_t>(a));
    if (!spec.axes[a] || k == 1) {
      view.push_back(n);
      expanded.push_back(n);
      out_sizes.push_back(n);
      continue;
    }
    const SpaceAxis& ax = *spec.axes[a];
    const int64_t c = ax.chunks, u = map.unit(ax.space), m = n / (c * u);
    const bool halves = f.width_pairing == Pairing::halves;
    for (int64_t d : halves ? std::vector<int64_t>{c, 1, m, u} : std::vector<int64_t>{c, m, 1, u}) view.push_back(d);
    for (int64_t d : halves ? std::vector<int64_t>{c, k, m, u} : std::vector<int64_t>{c, m, k, u}) expanded.push_back(d);
    out_sizes.push_back(n * k);
    if (effective_role(ax, kind) == AxisRole::in) ++in_axes;
  }
  if (view.size() == out_sizes.size()) return {t, false};  // no space axis
  torch::Tensor x = in_axes > 0 ? t / int_pow(k, in_axes) : t;  // split = copy ÷ k, done before the copy
  x = x.reshape(view).expand(expanded).contiguous().view(out_sizes);
  return {x, true};
}

torch::Tensor fresh(const Width& w) { return w.fresh ? w.t : w.t.clone(at::MemoryFormat::Contiguous); }

// ---------------------------------------------------------------------------- whole models
TensorMap coalesce_impl(const TensorMap& params, const ParamMap& map, const LevelShape& large, const CoalesceFactors& f,
                        bool state, MomentKind kind) {
  torch::NoGradGuard no_grad;
  const LevelShape small = coalesce_shape(map, large, f);
  const auto groups = detail::resolve(map, params, large, /*allow_absent=*/state);
  TensorMap out;
  for (const auto& g : groups) {
    if (g.tensors.empty()) continue;
    const ParamSpec& spec = *g.spec;
    // width first …
    std::vector<Width> w;
    w.reserve(g.tensors.size());
    for (const auto& t : g.tensors) w.push_back(width_coalesce(t, spec, map, f, kind));
    if (!spec.layered()) {
      out.emplace(spec.pattern, fresh(w.front()));
      continue;
    }
    if (f.depth == 1) {
      for (int64_t l = 0; l < large.layers; ++l) out.emplace(spec.name_for(l), fresh(w[static_cast<size_t>(l)]));
      continue;
    }
    // … then depth: block j of the small model is the mean of its group's blocks.
    for (int64_t j = 0; j < small.layers; ++j) {
      std::vector<torch::Tensor> members;
      for (int64_t m = 0; m < f.depth; ++m) {
        members.push_back(
            widen(w[static_cast<size_t>(group_member(j, m, small.layers, f.depth, f.depth_pairing))].t, f.depth));
      }
      auto mean = tree_sum(std::move(members));
      mean.div_(static_cast<double>(f.depth));
      out.emplace(spec.name_for(j), mean.to(w.front().t.scalar_type()));
    }
  }
  return out;
}

TensorMap decoalesce_impl(const TensorMap& params, const ParamMap& map, const LevelShape& large,
                          const CoalesceFactors& f, bool state, MomentKind kind) {
  torch::NoGradGuard no_grad;
  const LevelShape small = coalesce_shape(map, large, f);
  const auto groups = detail::resolve(map, params, small, /*allow_absent=*/state);
  TensorMap out;
  for (const auto& g : groups) {
    if (g.tensors.empty()) continue;
    const ParamSpec& spec = *g.spec;
    // Depth then width: the width result of a small block is computed once and copied into each
    // block of its group (copying commutes with the width operator exactly).
    for (size_t j = 0; j < g.tensors.size(); ++j) {
      auto w = fresh(width_decoalesce(g.tensors[j], spec, map, f, kind));
      if (!spec.layered()) {
        out.emplace(spec.pattern, std::move(w));
        continue;
      }
      for (int64_t m = 0; m < f.depth; ++m) {
        const int64_t l = group_member(static_cast<int64_t>(j), m, small.layers, f.depth, f.depth_pairing);
        out.emplace(spec.name_for(l), m == 0 ? w : w.clone());
      }
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------- names
Pairing parse_pairing(const std::string& name) {
  if (name == "halves") return Pairing::halves;
  if (name == "neighbors") return Pairing::neighbors;
  throw InputError("unknown pairing '" + name + "' (valid: halves, neighbors)");
}

InterpolationMode parse_interpolation_mode(const std::string& name) {
  if (name == "fixed") return InterpolationMode::fixed;
  if (name == "norm_matched") return InterpolationMode::norm_matched;
  throw InputError("unknown interpolation mode '" + name + "' (valid: fixed, norm_matched)");
}

std::string to_string(Pairing pairing) { return pairing == Pairing::halves ? "halves" : "neighbors"; }

std::string to_string(InterpolationMode mode) { return mode == InterpolationMode::fixed ? "fixed" : "norm_matched"; }

// ---------------------------------------------------------------------------- shapes
// The pairing plays no part in a shape: only the factors do (level_shape.h).
LevelShape coalesce_shape(const ParamMap& map, const LevelShape& large, const CoalesceFactors& f) {
  return coalesce_shape(map, large, f.width, f.depth);
}

std::vector<LevelShape> level_shapes(const ParamMap& map, const LevelShape& top, const CoalesceFactors& f, int count) {
  return level_shapes(map, top, f.width, f.depth, count);
}

// ---------------------------------------------------------------------------- operators
TensorMap coalesce(const TensorMap& params, const ParamMap& map, const LevelShape& large, const CoalesceFactors& f) {
  return coalesce_impl(params, map, large, f, /*state=*/false, MomentKind::first);
}

TensorMap decoalesce(const TensorMap& params, const ParamMap& map, const LevelShape& large, const CoalesceFactors& f) {
  return decoalesce_impl(params, map, large, f, /*state=*/false, MomentKind::first);
}

TensorMap coalesce_state(const TensorMap& state, const ParamMap& map, const LevelShape& large, const CoalesceFactors& f,
                         MomentKind kind) {
  return coalesce_impl(state, map, large, f, /*state=*/true, kind);
}

TensorMap decoalesce_state(const TensorMap& state, const ParamMap& map, const LevelShape& large,
                           const CoalesceFactors& f, MomentKind kind) {
  return decoalesce_impl(state, map, large, f, /*state=*/true, kind);
}

TensorMap interpolate(const TensorMap& pre, const TensorMap& deco, double alpha, InterpolationMode mode) {
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    throw InputError("interpolation alpha must lie in [0, 1], got " + std::to_string(alpha));
  }
  for (const auto& [name, t] : deco) {
    if (!pre.count(name)) throw InputError("interpolate: tensor '" + name + "' is in the de-coalesced model but not in θ_pre");
  }
  for (const auto& [name, p] : pre) {
    auto it = deco.find(name);
    if (it == deco.end()) throw InputError("interpolate: tensor '" + name + "' is in θ_pre but not in the de-coalesced model");
    const auto& d = it->second;
    if (!p.defined() || !d.defined()) throw InputError("interpolate: tensor '" + name + "' is undefined");
    if (p.sizes() != d.sizes()) {
      std::ostringstream msg;
      msg << "interpolate: tensor '" << name << "' has shape " << p.sizes() << " in θ_pre but " << d.sizes()
          << " de-coalesced";
      throw InputError(msg.str());
    }
    if (p.scalar_type() != d.scalar_type() || p.device() != d.device()) {
      std::ostringstream msg;
      msg << "interpolate: tensor '" << name << "' is " << p.scalar_type() << " on " << p.device() << " in θ_pre but "
          << d.scalar_type() << " on " << d.device() << " de-coalesced";
      throw InputError(msg.str());
    }
    if (!p.is_floating_point()) throw InputError("interpolate: tensor '" + name + "' is not floating point");
  }

  torch::NoGradGuard no_grad;
  TensorMap out;
  for (const auto& [name, p] : pre) {
    torch::Tensor d = deco.at(name);
    if (mode == InterpolationMode::norm_matched) {
      // ‖θ_pre‖_F / ‖θ_deco‖_F, or 1 when either norm is 0; stays on the device (no sync).
      const auto np = p.norm(), nd = d.norm();
      const auto scale = torch::where((np > 0) & (nd > 0), np / nd, torch::ones_like(np));
      d = d * scale;
    }
    if (alpha == 0.0) out.emplace(name, p.clone());
    else if (alpha == 1.0) out.emplace(name, mode == InterpolationMode::fixed ? d.clone() : d);
    else out.emplace(name, torch::lerp(p, d, alpha));  // (1 − α)·θ_pre + α·θ_deco
  }
  return out;
}

}  // namespace vcycle
