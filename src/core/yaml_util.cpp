// Strict YAML reading helpers; see include/vcycle/core/yaml_util.h.
#include "vcycle/core/yaml_util.h"

#include <cstdint>
#include <sstream>

namespace vcycle {

std::string yaml_where(const std::string& file, const YAML::Node& node) {
  if (node.IsDefined() && node.Mark().line >= 0) return file + ":" + std::to_string(node.Mark().line + 1);
  return file;
}

std::string yaml_describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return "'" + node.Scalar() + "'";
}

YamlReader::YamlReader(const YAML::Node& node, std::string file, std::string path)
    : node_(node), file_(std::move(file)), path_(std::move(path)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    throw ConfigError(yaml_where(file_, node_), path_, "expected a map, got " + yaml_describe(node_));
  }
}

bool YamlReader::has(const std::string& key) const {
  if (!node_.IsDefined() || node_.IsNull()) return false;
  YAML::Node n = node_[key];
  return n.IsDefined() && !n.IsNull();
}

YAML::Node YamlReader::node(const std::string& key) {
  touch(key);
  if (!node_.IsDefined() || node_.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  return node_[key];
}

std::string YamlReader::key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

void YamlReader::fail(const std::string& key, const std::string& what) const {
  YAML::Node n = (node_.IsDefined() && !node_.IsNull()) ? node_[key] : YAML::Node();
  throw ConfigError(yaml_where(file_, n.IsDefined() ? n : node_), key_path(key), what);
}

void YamlReader::finish() const {
  if (!node_.IsDefined() || node_.IsNull()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.as<std::string>();
    if (known_.count(key)) continue;
    std::ostringstream valid;
    for (const auto& k : known_) valid << (valid.tellp() > 0 ? ", " : "") << k;
    throw ConfigError(yaml_where(file_, kv.first), key_path(key), "unknown key (valid keys: " + valid.str() + ")");
  }
}

namespace {
[[noreturn]] void type_error(const YAML::Node& n, const std::string& file, const std::string& key, const char* want) {
  throw ConfigError(yaml_where(file, n), key, std::string("expected ") + want + ", got " + yaml_describe(n));
}
}  // namespace

template <>
double yaml_as<double>(const YAML::Node& n, const std::string& file, const std::string& key) {
  if (!n.IsScalar()) type_error(n, file, key, "a number");
  try {
    return n.as<double>();
  } catch (const YAML::Exception&) {
    type_error(n, file, key, "a number");
  }
}

template <>
int64_t yaml_as<int64_t>(const YAML::Node& n, const std::string& file, const std::string& key) {
  if (!n.IsScalar()) type_error(n, file, key, "an integer");
  try {
    return n.as<int64_t>();
  } catch (const YAML::Exception&) {
    type_error(n, file, key, "an integer");
  }
}

template <>
int yaml_as<int>(const YAML::Node& n, const std::string& file, const std::string& key) {
  const int64_t v = yaml_as<int64_t>(n, file, key);
  if (v < INT32_MIN || v > INT32_MAX) type_error(n, file, key, "a 32-bit integer");
  return static_cast<int>(v);
}

template <>
bool yaml_as<bool>(const YAML::Node& n, const std::string& file, const std::string& key) {
  if (!n.IsScalar()) type_error(n, file, key, "true or false");
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    type_error(n, file, key, "true or false");
  }
}

template <>
std::string yaml_as<std::string>(const YAML::Node& n, const std::string& file, const std::string& key) {
  if (!n.IsScalar()) type_error(n, file, key, "a string");
  return n.Scalar();
}

template <>
std::vector<double> yaml_as<std::vector<double>>(const YAML::Node& n, const std::string& file, const std::string& key) {
  if (!n.IsSequence()) type_error(n, file, key, "a list of numbers");
  std::vector<double> out;
  for (size_t i = 0; i < n.size(); ++i) out.push_back(yaml_as<double>(n[i], file, key + "[" + std::to_string(i) + "]"));
  return out;
}

template <>
std::vector<std::string> yaml_as<std::vector<std::string>>(const YAML::Node& n, const std::string& file,
                                                           const std::string& key) {
  if (!n.IsSequence()) type_error(n, file, key, "a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); ++i) out.push_back(yaml_as<std::string>(n[i], file, key + "[" + std::to_string(i) + "]"));
  return out;
}

}  // namespace vcycle
