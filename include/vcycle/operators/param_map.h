// Parameter map: which axes of which named tensors live in which width space, and which tensors
// belong to a repeated block (the depth space). The operators (operators.h) read nothing else.
//
// Built in C++:
//   ParamMap map;
//   map.space("hidden").space("heads", /*unit=*/64).space("ffn")
//      .param("tok_emb.weight", {axis_none(), axis_out("hidden")})
//      .param("blocks.{layer}.attn.qkv.weight", {axis_out("heads", /*chunks=*/3), axis_in("hidden")})
//      .param("blocks.{layer}.attn.qkv.bias", {axis_out("heads", 3)});
// or loaded from YAML (param_map_from_yaml / param_map_load):
//   spaces:
//     hidden: {unit: 1}
//     heads:  {unit: 64}
//   params:
//     tok_emb.weight: {axes: [null, {space: hidden, role: out}]}
//     "blocks.{layer}.attn.qkv.weight": {axes: [{space: heads, role: out, chunks: 3}, {space: hidden, role: in}]}
//     "blocks.{layer}.ln1.weight": {axes: [{space: hidden, role: out}]}
//     step_count: {axes: []}
// `axes` has exactly one entry per tensor axis: `null` (the axis is in no space) or
// {space, role: out|in, chunks (default 1)}. A pattern is an exact tensor name, or a name with one
// `{layer}` placeholder standing for the block index (a decimal number without leading zeros).
//
// Roles (spec operators.md §3): `out` — coalesce averages a group of units, de-coalesce copies;
// `in` — coalesce sums, de-coalesce copies and divides by the factor. A chunked axis holds `chunks`
// consecutive copies of the space (fused QKV: 3) and is acted on chunk by chunk.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vcycle/operators/level_shape.h"
#include "vcycle/core/tensor_map.h"

namespace YAML {
class Node;
}

namespace vcycle {

enum class AxisRole {
  out,  // rows of a linear weight, biases, norm gains, embedding features: average / copy
  in,   // input columns of a linear weight: sum / copy ÷ k
};

struct SpaceAxis {
  std::string space;             // width space name, e.g. "heads"
  AxisRole role = AxisRole::out;  // how the operators treat this axis
  int64_t chunks = 1;             // the axis is `chunks` consecutive blocks, each the size of the space

  bool operator==(const SpaceAxis& o) const { return space == o.space && role == o.role && chunks == o.chunks; }
};

// One tensor axis: in no space (nullopt) or in one.
using AxisSpec = std::optional<SpaceAxis>;

inline AxisSpec axis_none() { return std::nullopt; }
inline AxisSpec axis_out(const std::string& space, int64_t chunks = 1) { return SpaceAxis{space, AxisRole::out, chunks}; }
inline AxisSpec axis_in(const std::string& space, int64_t chunks = 1) { return SpaceAxis{space, AxisRole::in, chunks}; }

struct ParamSpec {
  std::string pattern;         // exact name, or with one "{layer}" placeholder
  std::vector<AxisSpec> axes;  // one per tensor axis

  bool layered() const;  // pattern contains "{layer}"
  // The name for block `layer` (the pattern itself when not layered).
  std::string name_for(int64_t layer) const;
  // If `name` matches: the layer index (-1 when not layered); otherwise nullopt.
  std::optional<int64_t> match(const std::string& name) const;
  bool operator==(const ParamSpec& o) const { return pattern == o.pattern && axes == o.axes; }
};

class ParamMap {
 public:
  // Declares a width space whose size is a multiple of `unit` (heads: the head size). Throws
  // InputError on a duplicate name or unit < 1.
  ParamMap& space(const std::string& name, int64_t unit = 1);
  // Declares a tensor (or one per block). Throws InputError on a duplicate pattern, a pattern with
  // more than one "{layer}", chunks < 1, or a space not declared (declare spaces first).
  ParamMap& param(const std::string& pattern, std::vector<AxisSpec> axes);

  const std::map<std::string, int64_t>& spaces() const { return spaces_; }  // name -> unit
  const std::vector<ParamSpec>& params() const { return params_; }         // in declaration order
  int64_t unit(const std::string& space) const;  // throws InputError naming an undeclared space

  bool operator==(const ParamMap& o) const { return spaces_ == o.spaces_ && params_ == o.params_; }
  bool operator!=(const ParamMap& o) const { return !(*this == o); }

 private:
  std::map<std::string, int64_t> spaces_;  // width space -> unit
  std::vector<ParamSpec> params_;          // declared tensors
};

// Checks `tensors` (a model of shape `shape`) against `map`: every tensor matched by exactly one
// pattern, every pattern matching something, every layered pattern matching blocks 0 … layers−1
// exactly, one axis entry per tensor axis, each space axis of size chunks × shape.size(space), every
// space size a multiple of its unit, space/layered tensors floating point. Throws InputError naming
// the tensor or pattern at fault.
void param_map_validate(const ParamMap& map, const TensorMap& tensors, const LevelShape& shape);

// Reads a map from a YAML node (format above). `where` names the source for messages (a file name;
// the node's line is appended where yaml-cpp knows it), `key` is the node's key path in that file ("" at the root, "model.param_map" when nested).
// Throws ConfigError naming the key path, e.g. `params.blocks.{layer}.ln1.weight.axes[0].role`.
ParamMap param_map_from_yaml(const YAML::Node& node, const std::string& where, const std::string& key = "");
// Loads a YAML file holding a map at its root.
ParamMap param_map_load(const std::string& path);
// Writes `map` in the YAML format above; param_map_from_yaml reads it back equal.
std::string param_map_to_yaml(const ParamMap& map);

}  // namespace vcycle
