// Parameter map: builder, validation against a model's tensors, YAML form. See
// include/vcycle/operators/param_map.h.
#include "vcycle/operators/param_map.h"

#include <algorithm>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "resolve.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/yaml_util.h"

namespace vcycle {

namespace {

constexpr const char* kLayer = "{layer}";
constexpr size_t kLayerLen = 7;

std::string role_name(AxisRole role) { return role == AxisRole::in ? "in" : "out"; }

std::string describe_axis(const SpaceAxis& a) {
  std::ostringstream out;
  out << a.space << " " << role_name(a.role);
  if (a.chunks != 1) out << " x" << a.chunks;
  return out.str();
}

}  // namespace

// ---------------------------------------------------------------------------- ParamSpec
bool ParamSpec::layered() const { return pattern.find(kLayer) != std::string::npos; }

std::string ParamSpec::name_for(int64_t layer) const {
  const auto at = pattern.find(kLayer);
  if (at == std::string::npos) return pattern;
  return pattern.substr(0, at) + std::to_string(layer) + pattern.substr(at + kLayerLen);
}

std::optional<int64_t> ParamSpec::match(const std::string& name) const {
  const auto at = pattern.find(kLayer);
  if (at == std::string::npos) {
    if (name == pattern) return -1;
    return std::nullopt;
  }
  const size_t suffix_len = pattern.size() - at - kLayerLen;
  if (name.size() < at + suffix_len + 1) return std::nullopt;
  if (name.compare(0, at, pattern, 0, at) != 0) return std::nullopt;
  if (name.compare(name.size() - suffix_len, suffix_len, pattern, at + kLayerLen, suffix_len) != 0) return std::nullopt;
  const std::string digits = name.substr(at, name.size() - suffix_len - at);
  if (digits.size() > 15) return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;  // one spelling per index
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return std::stoll(digits);
}

// ---------------------------------------------------------------------------- ParamMap
ParamMap& ParamMap::space(const std::string& name, int64_t unit) {
  if (name.empty()) throw InputError("parameter map: a width space needs a name");
  if (unit < 1) throw InputError("parameter map: space '" + name + "' has unit " + std::to_string(unit) + ", must be >= 1");
  if (!spaces_.emplace(name, unit).second) throw InputError("parameter map: space '" + name + "' declared twice");
  return *this;
}

ParamMap& ParamMap::param(const std::string& pattern, std::vector<AxisSpec> axes) {
  const std::string what = "parameter map: pattern '" + pattern + "'";
  if (pattern.empty()) throw InputError("parameter map: empty pattern");
  const auto at = pattern.find(kLayer);
  if (at != std::string::npos && pattern.find(kLayer, at + 1) != std::string::npos) {
    throw InputError(what + " has more than one {layer}");
  }
  std::string rest = pattern;
  if (at != std::string::npos) rest.erase(at, kLayerLen);
  if (rest.find_first_of("{}") != std::string::npos) throw InputError(what + " has a placeholder other than {layer}");
  for (const auto& p : params_) {
    if (p.pattern == pattern) throw InputError(what + " declared twice");
  }
  for (size_t i = 0; i < axes.size(); ++i) {
    if (!axes[i]) continue;
    if (!spaces_.count(axes[i]->space)) {
      throw InputError(what + " axis " + std::to_string(i) + " names undeclared space '" + axes[i]->space +
                       "' (declare spaces before params)");
    }
    if (axes[i]->chunks < 1) {
      throw InputError(what + " axis " + std::to_string(i) + " has chunks " + std::to_string(axes[i]->chunks) +
                       ", must be >= 1");
    }
  }
  params_.push_back(ParamSpec{pattern, std::move(axes)});
  return *this;
}

int64_t ParamMap::unit(const std::string& space) const {
  auto it = spaces_.find(space);
  if (it == spaces_.end()) throw InputError("parameter map has no width space '" + space + "'");
  return it->second;
}

// ---------------------------------------------------------------------------- validation
namespace detail {

std::vector<PatternTensors> resolve(const ParamMap& map, const TensorMap& tensors, const LevelShape& shape,
                                    bool allow_absent) {
  // Every space of the map has a size at this shape, a whole number of units.
  for (const auto& [space, unit] : map.spaces()) {
    const int64_t n = shape.size(space);
    if (n < 1 || n % unit != 0) {
      throw InputError("width space '" + space + "' has size " + std::to_string(n) + " at shape " + shape.to_string() +
                       ", not a positive multiple of its unit " + std::to_string(unit));
    }
  }

  const auto& specs = map.params();
  std::vector<PatternTensors> out(specs.size());
  for (size_t s = 0; s < specs.size(); ++s) {
    out[s].spec = &specs[s];
    if (specs[s].layered()) out[s].tensors.resize(static_cast<size_t>(std::max<int64_t>(shape.layers, 0)));
  }
  std::vector<int64_t> found(specs.size(), 0);

  for (const auto& [name, tensor] : tensors) {
    int64_t hit = -1, layer = -1;
    for (size_t s = 0; s < specs.size(); ++s) {
      auto m = specs[s].match(name);
      if (!m) continue;
      if (hit >= 0) {
        throw InputError("tensor '" + name + "' matches two patterns of the parameter map: '" + specs[hit].pattern +
                         "' and '" + specs[s].pattern + "'");
      }
      hit = static_cast<int64_t>(s);
      layer = *m;
    }
    if (hit < 0) throw InputError("tensor '" + name + "' is not covered by the parameter map");
    const ParamSpec& spec = specs[hit];
    const std::string what = "tensor '" + name + "' (pattern '" + spec.pattern + "')";

    if (!tensor.defined()) throw InputError(what + " is undefined");
    if (static_cast<int64_t>(spec.axes.size()) != tensor.dim()) {
      std::ostringstream msg;
      msg << what << " has " << tensor.dim() << " axes " << tensor.sizes() << ", the map declares "
          << spec.axes.size();
      throw InputError(msg.str());
    }
    bool acted_on = spec.layered();
    for (size_t a = 0; a < spec.axes.size(); ++a) {
      if (!spec.axes[a]) continue;
      acted_on = true;
      const SpaceAxis& ax = *spec.axes[a];
      const int64_t want = ax.chunks * shape.size(ax.space);
      if (tensor.size(static_cast<int64_t>(a)) != want) {
        std::ostringstream msg;
        msg << what << " axis " << a << " (" << describe_axis(ax) << ") has size " << tensor.size(static_cast<int64_t>(a))
            << ", expected " << want;
        if (ax.chunks != 1) msg << " = " << ax.chunks << " x " << shape.size(ax.space);
        msg << " at shape " << shape.to_string();
        throw InputError(msg.str());
      }
    }
    if (acted_on && !tensor.is_floating_point()) {
      throw InputError(what + " has a non-floating dtype; only floating tensors can be coalesced");
    }
    if (spec.layered()) {
      if (layer >= shape.layers) {
        throw InputError("tensor '" + name + "' has layer index " + std::to_string(layer) + ", but the level has " +
                         std::to_string(shape.layers) + " layers");
      }
      out[hit].tensors[static_cast<size_t>(layer)] = tensor;
    } else {
      out[hit].tensors.push_back(tensor);
    }
    ++found[hit];
  }

  for (size_t s = 0; s < specs.size(); ++s) {
    if (found[s] == 0) {
      if (!allow_absent) throw InputError("pattern '" + specs[s].pattern + "' of the parameter map matches no tensor");
      out[s].tensors.clear();
      continue;
    }
    if (!specs[s].layered()) continue;
    for (int64_t l = 0; l < shape.layers; ++l) {
      if (!out[s].tensors[static_cast<size_t>(l)].defined()) {
        throw InputError("pattern '" + specs[s].pattern + "' has no tensor for layer " + std::to_string(l) + " ('" +
                         specs[s].name_for(l) + "'); the level has " + std::to_string(shape.layers) + " layers");
      }
    }
  }
  return out;
}

}  // namespace detail

void param_map_validate(const ParamMap& map, const TensorMap& tensors, const LevelShape& shape) {
  detail::resolve(map, tensors, shape, /*allow_absent=*/false);
}

// ---------------------------------------------------------------------------- YAML
namespace {

std::string quoted_key(const std::string& key, const std::string& child) { return key + "[\"" + child + "\"]"; }

AxisSpec parse_axis(const YAML::Node& node, const std::string& where, const std::string& key) {
  if (node.IsNull()) return axis_none();
  if (!node.IsMap()) {
    throw ConfigError(yaml_where(where, node), key, "expected null (no space) or {space, role, chunks}");
  }
  YamlReader r(node, where, key);
  r.check_keys({"space", "role", "chunks"});
  const YAML::Node space = r.node("space"), role_node = r.node("role"), chunks = r.node("chunks");
  if (!space.IsDefined()) r.fail("space", "missing");
  if (!role_node.IsDefined()) r.fail("role", "missing (out or in)");
  SpaceAxis axis;
  axis.space = yaml_as<std::string>(space, where, r.key_path("space"));
  const std::string role = yaml_as<std::string>(role_node, where, r.key_path("role"));
  if (role == "out") axis.role = AxisRole::out;
  else if (role == "in") axis.role = AxisRole::in;
  else r.fail("role", "unknown role '" + role + "' (valid: in, out)");
  if (chunks.IsDefined()) {
    axis.chunks = yaml_as<int64_t>(chunks, where, r.key_path("chunks"));
    if (axis.chunks < 1) r.fail("chunks", "must be >= 1");
  }
  return axis;
}

// One entry of `spaces`: name -> {unit: N} (or null for unit 1).
void parse_space(ParamMap& map, const YAML::Node& name_node, const YAML::Node& value, const std::string& where,
                 const std::string& spaces_key) {
  const std::string name = name_node.as<std::string>();
  const std::string k = spaces_key + "." + name;
  int64_t unit = 1;
  if (value.IsMap()) {
    YamlReader r(value, where, k);
    r.check_keys({"unit"});
    if (const YAML::Node n = r.node("unit"); n.IsDefined()) unit = yaml_as<int64_t>(n, where, r.key_path("unit"));
  } else if (!value.IsNull()) {
    throw ConfigError(yaml_where(where, value), k, "expected {unit: N}");
  }
  try {
    map.space(name, unit);
  } catch (const ConfigError&) {
    throw;
  } catch (const InputError& e) {
    throw ConfigError(yaml_where(where, name_node), k, e.what());
  }
}

// One entry of `params`: pattern -> {axes: [...]}.
void parse_param(ParamMap& map, const YAML::Node& pattern_node, const YAML::Node& value, const std::string& where,
                 const std::string& params_key) {
  const std::string pattern = pattern_node.as<std::string>();
  const std::string k = quoted_key(params_key, pattern);
  if (!value.IsMap()) throw ConfigError(yaml_where(where, value), k, "expected {axes: [...]}");
  YamlReader r(value, where, k);
  r.check_keys({"axes"});
  const YAML::Node axes_node = r.node("axes");
  if (!axes_node.IsDefined() || !axes_node.IsSequence()) {
    throw ConfigError(yaml_where(where, value), r.key_path("axes"), "missing or not a list (one entry per tensor axis)");
  }
  std::vector<AxisSpec> axes;
  for (size_t i = 0; i < axes_node.size(); ++i) {
    const std::string ak = r.key_path("axes") + "[" + std::to_string(i) + "]";
    axes.push_back(parse_axis(axes_node[i], where, ak));
    if (axes.back() && !map.spaces().count(axes.back()->space)) {
      throw ConfigError(yaml_where(where, axes_node[i]), ak + ".space",
                        "unknown space '" + axes.back()->space + "' (not under spaces)");
    }
  }
  try {
    map.param(pattern, std::move(axes));
  } catch (const ConfigError&) {
    throw;
  } catch (const InputError& e) {
    throw ConfigError(yaml_where(where, pattern_node), k, e.what());
  }
}

}  // namespace

ParamMap param_map_from_yaml(const YAML::Node& node, const std::string& where, const std::string& key) {
  if (!node.IsDefined() || !node.IsMap()) {
    throw ConfigError(yaml_where(where, node), key, "expected a map with keys spaces and params");
  }
  YamlReader r(node, where, key);
  r.check_keys({"spaces", "params"});
  const YAML::Node spaces = r.node("spaces"), params = r.node("params");
  if (!spaces.IsDefined() || !spaces.IsMap()) r.fail("spaces", "missing or not a map (space name -> {unit})");
  if (!params.IsDefined() || !params.IsMap()) r.fail("params", "missing or not a map (pattern -> {axes})");
  ParamMap map;
  for (const auto& item : spaces) parse_space(map, item.first, item.second, where, r.key_path("spaces"));
  for (const auto& item : params) parse_param(map, item.first, item.second, where, r.key_path("params"));
  return map;
}

ParamMap param_map_load(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path, "", "cannot read the file");
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1), "", e.msg);
  }
  return param_map_from_yaml(root, path);
}

std::string param_map_to_yaml(const ParamMap& map) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "spaces" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, unit] : map.spaces()) {
    e << YAML::Key << name << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "unit" << YAML::Value << unit
      << YAML::EndMap;
  }
  e << YAML::EndMap;
  e << YAML::Key << "params" << YAML::Value << YAML::BeginMap;
  for (const auto& p : map.params()) {
    e << YAML::Key << YAML::DoubleQuoted << p.pattern << YAML::Value << YAML::Flow << YAML::BeginMap;
    e << YAML::Key << "axes" << YAML::Value << YAML::BeginSeq;
    for (const auto& a : p.axes) {
      if (!a) {
        e << YAML::Null;
        continue;
      }
      e << YAML::BeginMap << YAML::Key << "space" << YAML::Value << a->space << YAML::Key << "role" << YAML::Value
        << role_name(a->role);
      if (a->chunks != 1) e << YAML::Key << "chunks" << YAML::Value << a->chunks;
      e << YAML::EndMap;
    }
    e << YAML::EndSeq << YAML::EndMap;
  }
  e << YAML::EndMap << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace vcycle
