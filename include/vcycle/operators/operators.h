// The V-cycle's model operators (spec operators.md): coalesce a model into the next smaller level,
// de-coalesce it back, and interpolate with the parameters saved before coalescing.
//
//   ParamMap map = param_map_load("my_model_map.yaml");  // or a model's own: ModelAdapter::param_map()
//   auto shapes = level_shapes(map, top_shape, factors, /*count=*/3);  // checks divisibility
//   TensorMap small = coalesce(module_tensors(*big), map, shapes[0], factors);
//   TensorMap back  = decoalesce(small, map, shapes[0], factors);  // shape of shapes[0] again
//   TensorMap mixed = interpolate(theta_pre, back, 0.5, InterpolationMode::fixed);
//
// All operators are gathers / reshapes plus sums (no dense P matrices), run on the input tensors'
// device, never record autograd history and return fresh tensors (no storage shared with inputs).
// Width acts on every space axis of every tensor, depth on the layered tensors; coalescing applies
// width then depth, de-coalescing depth then width. coalesce(decoalesce(θ)) == θ bitwise when the
// factors are powers of two (sums are taken as balanced trees so k equal addends add exactly); for
// other factors coalescing accumulates float32/16 in float64 and the round trip is within 1 ulp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vcycle/operators/level_shape.h"
#include "vcycle/operators/param_map.h"
#include "vcycle/core/tensor_map.h"

namespace vcycle {

// Which units form a group of k (spec §1): halves — group i = {i, i + m/k, i + 2m/k, …} (the
// reference code); neighbors — group i = {k·i, …, k·i + k − 1} (the paper's figure).
enum class Pairing { halves, neighbors };

struct CoalesceFactors {
  int64_t width = 2;                        // units merged per group in every width space (1: keep width)
  int64_t depth = 2;                        // blocks merged per group (1: keep depth)
  Pairing width_pairing = Pairing::halves;  // grouping of width units
  Pairing depth_pairing = Pairing::halves;  // grouping of blocks
};

enum class InterpolationMode {
  fixed,         // θ = (1 − α)·θ_pre + α·θ_deco
  norm_matched,  // θ_deco scaled by ‖θ_pre‖_F / ‖θ_deco‖_F per tensor first (skipped when a norm is 0)
};

// Which optimizer statistic a state tensor (shaped like its parameter) holds.
enum class MomentKind {
  first,   // like the parameter: out axes average / copy, in axes sum / copy ÷ k
  second,  // a mean square: averaged on every axis when coalescing, copied when de-coalescing
};

// Parses "halves" | "neighbors"; otherwise InputError listing the valid values.
Pairing parse_pairing(const std::string& name);
// Parses "fixed" | "norm_matched"; otherwise InputError listing the valid values.
InterpolationMode parse_interpolation_mode(const std::string& name);
std::string to_string(Pairing pairing);
std::string to_string(InterpolationMode mode);

// level_shape.h's coalesce_shape and level_shapes with the factors f.width and f.depth.
LevelShape coalesce_shape(const ParamMap& map, const LevelShape& large, const CoalesceFactors& f);
std::vector<LevelShape> level_shapes(const ParamMap& map, const LevelShape& top, const CoalesceFactors& f, int count);

// `params` are the tensors of a model of shape `large`; returns the next (smaller) level's tensors.
// Validates `params` against `map` at `large` first (param_map_validate).
TensorMap coalesce(const TensorMap& params, const ParamMap& map, const LevelShape& large, const CoalesceFactors& f);
// `params` are the tensors of a model of shape coalesce_shape(map, large, f); returns tensors of shape
// `large` (the level above).
TensorMap decoalesce(const TensorMap& params, const ParamMap& map, const LevelShape& large, const CoalesceFactors& f);

// Optimizer state: `state` maps parameter names to tensors shaped like those parameters (Adam's
// exp_avg or exp_avg_sq, say). Unlike coalesce/decoalesce, `state` may hold a subset of the
// parameters (a pattern may match nothing), but a layered pattern must cover all blocks or none.
TensorMap coalesce_state(const TensorMap& state, const ParamMap& map, const LevelShape& large, const CoalesceFactors& f,
                         MomentKind kind);
TensorMap decoalesce_state(const TensorMap& state, const ParamMap& map, const LevelShape& large,
                           const CoalesceFactors& f, MomentKind kind);

// Blends two models of the same shape tensor by tensor (spec §5). Every name must be in both with
// identical shape, dtype and device, else InputError naming the tensor; alpha must lie in [0, 1].
// alpha = 0 returns θ_pre exactly, alpha = 1 returns (scaled) θ_deco exactly.
TensorMap interpolate(const TensorMap& pre, const TensorMap& deco, double alpha, InterpolationMode mode);

}  // namespace vcycle
