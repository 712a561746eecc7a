// Strict YAML reading helpers; see include/vcycle/core/yaml_util.h.
#include "vcycle/core/yaml_util.h"

#include <cstdint>
#include <filesystem>
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

// ---------------------------------------------------------------------------- files and overrides
YAML::Node load_yaml_with_overrides(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(path + ": config file not found");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1), "", "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw ConfigError(path, "", std::string("cannot read YAML: ") + e.what());
  }
  for (const auto& o : overrides) apply_override(root, o, path);
  return root;
}

void apply_override(YAML::Node& root, const std::string& assignment, const std::string& file) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set", assignment, "expected key=value (e.g. phases[1].lr=2e-3)");
  }
  const std::string path = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set", path, std::string("value is not valid YAML: ") + e.what());
  }
  // Walk "a.b[2].c": keys separated by '.', list indices in brackets. yaml-cpp nodes are handles,
  // so the walk keeps a chain of handles and assigns through the last one.
  std::vector<YAML::Node> chain{root};
  size_t i = 0;
  std::string walked;
  while (i < path.size()) {
    YAML::Node cur = chain.back();
    if (path[i] == '[') {
      const auto close = path.find(']', i);
      if (close == std::string::npos) throw ConfigError("--set", path, "unclosed '['");
      size_t idx = 0;
      try {
        idx = std::stoul(path.substr(i + 1, close - i - 1));
      } catch (const std::exception&) {
        throw ConfigError("--set", path, "list index must be a number");
      }
      if (!cur.IsSequence() || idx >= cur.size()) {
        throw ConfigError(file, walked, "has no element [" + std::to_string(idx) + "] to override");
      }
      walked += path.substr(i, close - i + 1);
      chain.push_back(cur[idx]);
      i = close + 1;
      if (i < path.size() && path[i] == '.') ++i;
    } else {
      auto end = path.find_first_of(".[", i);
      if (end == std::string::npos) end = path.size();
      const std::string key = path.substr(i, end - i);
      if (key.empty()) throw ConfigError("--set", path, "empty key");
      if (cur.IsDefined() && !cur.IsNull() && !cur.IsMap()) throw ConfigError(file, walked, "is not a map");
      walked += (walked.empty() ? "" : ".") + key;
      chain.push_back(cur[key]);
      i = end;
      if (i < path.size() && path[i] == '.') ++i;
    }
  }
  chain.back() = value;
}

// ---------------------------------------------------------------------------- YamlReader
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

void YamlReader::unknown_key(const YAML::Node& key) const {
  const std::string name = key.as<std::string>();
  std::ostringstream valid;
  if (declared_.empty()) {
    for (const auto& k : known_) valid << (valid.tellp() > 0 ? ", " : "") << k;
  } else {
    for (const auto& k : declared_) valid << (valid.tellp() > 0 ? ", " : "") << k;
  }
  throw ConfigError(yaml_where(file_, key), key_path(name),
                    "unknown key '" + name + "' (valid keys: " + valid.str() + ")");
}

void YamlReader::check_keys(const std::vector<std::string>& keys) {
  declared_ = keys;
  for (const auto& k : keys) touch(k);
  finish();
}

void YamlReader::finish() const {
  if (!node_.IsDefined() || node_.IsNull()) return;
  for (const auto& kv : node_) {
    if (!known_.count(kv.first.as<std::string>())) unknown_key(kv.first);
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
