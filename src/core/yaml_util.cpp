// Strict YAML reading helpers; see include/vcycle/core/yaml_util.h.
#include "vcycle/core/yaml_util.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <utility>
#include <sstream>

#include "vcycle/core/file_util.h"

namespace vcycle {

namespace {

// The nodes the `--set` overrides of the document being read put in (their values and everything in
// them), with the argument that did: an error about such a node cites the argument, not a line of
// the file (the node's own mark is line 1 of the argument's text).
std::vector<std::pair<YAML::Node, std::string>>& override_nodes() {
  static thread_local std::vector<std::pair<YAML::Node, std::string>> nodes;
  return nodes;
}

void remember_override(const YAML::Node& node, const std::string& assignment) {
  override_nodes().emplace_back(node, assignment);
  if (node.IsMap()) {
    for (const auto& kv : node) {
      remember_override(kv.first, assignment);
      remember_override(kv.second, assignment);
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) remember_override(item, assignment);
  }
}

// yaml-cpp keeps every pair of a map with a repeated key but answers lookups with the first, so a
// repeated key would be silently ignored: refuse it, naming both lines.
void check_duplicate_keys(const YAML::Node& node, const std::string& where, const std::string& path) {
  if (node.IsMap()) {
    std::map<std::string, int> first_line;
    for (const auto& kv : node) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("<complex key>");
      const std::string key_path = path.empty() ? key : path + "." + key;
      const int line = kv.first.Mark().line + 1;
      const auto [it, inserted] = first_line.emplace(key, line);
      if (!inserted) {
        if (where.rfind("--set ", 0) == 0) {  // a one-line value: lines say nothing
          throw ConfigError(where, key_path, "duplicate key '" + key + "' in the value; each key may appear once");
        }
        throw ConfigError(where + ":" + std::to_string(line), key_path,
                          "duplicate key '" + key + "' (first at line " + std::to_string(it->second) + ", again at line " +
                              std::to_string(line) + "); each key may appear once");
      }
      check_duplicate_keys(kv.second, where, key_path);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) check_duplicate_keys(node[i], where, path + "[" + std::to_string(i) + "]");
  }
}

}  // namespace

std::string yaml_where(const std::string& file, const YAML::Node& node) {
  for (const auto& [n, assignment] : override_nodes()) {
    if (node.IsDefined() && n.is(node)) return "--set " + assignment;
  }
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
  require_readable_file(path, "config file");
  YAML::Node root;
  override_nodes().clear();
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1), "", "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw ConfigError(path, "", std::string("cannot read YAML: ") + e.what());
  }
  check_duplicate_keys(root, path, "");
  override_nodes().clear();
  for (const auto& o : overrides) apply_override(root, o, path);
  return root;
}

void apply_override(YAML::Node& root, const std::string& assignment, const std::string& file) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set " + assignment, "", "expected key=value (e.g. phases[1].lr=2e-3)");
  }
  const std::string path = assignment.substr(0, eq);
  const std::string where = "--set " + assignment;
  (void)file;  // errors cite the argument: the file is not where the override came from
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError(where, path, std::string("value is not valid YAML: ") + e.what());
  }
  check_duplicate_keys(value, where, path);
  // Walk "a.b[2].c": keys separated by '.', list indices in brackets. yaml-cpp nodes are handles,
  // so the walk keeps a chain of handles and assigns through the last one.
  std::vector<YAML::Node> chain{root};
  size_t i = 0;
  std::string walked;
  while (i < path.size()) {
    YAML::Node cur = chain.back();
    if (path[i] == '[') {
      const auto close = path.find(']', i);
      if (close == std::string::npos) throw ConfigError(where, path, "unclosed '['");
      const std::string index_text = path.substr(i + 1, close - i - 1);
      if (!index_text.empty() && index_text[0] == '-') {
        throw ConfigError(where, path, "list index must be >= 0, got " + index_text);
      }
      size_t idx = 0;
      try {
        if (index_text.empty() || index_text.find_first_not_of("0123456789") != std::string::npos) throw std::invalid_argument("");
        idx = std::stoul(index_text);
      } catch (const std::exception&) {
        throw ConfigError(where, path, "list index must be a number >= 0, got '" + index_text + "'");
      }
      if (!cur.IsSequence() || idx >= cur.size()) {
        throw ConfigError(where, walked.empty() ? path : walked,
                          "has no element [" + std::to_string(idx) + "] to override" +
                              (cur.IsSequence() ? " (it has " + std::to_string(cur.size()) + ")" : " (not a list)"));
      }
      walked += path.substr(i, close - i + 1);
      chain.push_back(cur[idx]);
      i = close + 1;
      if (i < path.size() && path[i] == '.') ++i;
    } else {
      auto end = path.find_first_of(".[", i);
      if (end == std::string::npos) end = path.size();
      const std::string key = path.substr(i, end - i);
      if (key.empty()) throw ConfigError(where, path, "empty key");
      if (cur.IsDefined() && !cur.IsNull() && !cur.IsMap()) throw ConfigError(where, walked, "is not a map");
      walked += (walked.empty() ? "" : ".") + key;
      chain.push_back(cur[key]);
      i = end;
      if (i < path.size() && path[i] == '.') ++i;
    }
  }
  chain.back() = value;
  remember_override(value, assignment);
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
