// Strict YAML reading: every key checked, every error names the file, key path and line.
//
//   YamlReader r(node, "configs/x.yaml", "phases[1]");
//   double lr = r.get<double>("lr");            // required
//   int64_t w = r.get_or<int64_t>("warmup", 0); // optional
//   r.finish();                                  // unknown keys -> ConfigError listing valid ones
//
// A map whose keys are all known up front can be checked before any value is read:
//   YamlReader r(node, file, "optimizers.came");
//   r.check_keys({"betas", "eps", "weight_decay"});  // unknown keys -> ConfigError, in this order
//
// And the file-level helpers every config loader uses: load_yaml_with_overrides (with `--set`
// overrides, apply_override).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "vcycle/core/errors.h"

namespace vcycle {

// "file:line" for a node (line is 1-based; just "file" when yaml-cpp has no mark).
std::string yaml_where(const std::string& file, const YAML::Node& node);

// Human-readable YAML type of a node: "map", "list", "scalar 'abc'", "null".
std::string yaml_describe(const YAML::Node& node);

// Reads a YAML file and applies `key=value` overrides. InputError if the file is missing,
// ConfigError naming the file (and line) on a syntax error or a bad override.
YAML::Node load_yaml_with_overrides(const std::string& path, const std::vector<std::string>& overrides);

// Applies "a.b[2].c=value" overrides (value parsed as YAML) to a loaded document.
void apply_override(YAML::Node& root, const std::string& assignment, const std::string& file);

class YamlReader {
 public:
  // `node` must be a map (or null/undefined, read as an empty map); `path` is its key path ("" = root).
  YamlReader(const YAML::Node& node, std::string file, std::string path);

  bool has(const std::string& key) const;
  YAML::Node node(const std::string& key);  // marks key as known; undefined node if absent
  std::string key_path(const std::string& key) const;

  template <typename T>
  T get(const std::string& key);
  template <typename T>
  T get_or(const std::string& key, const T& fallback) {
    return has(key) ? get<T>(key) : (touch(key), fallback);
  }

  // Range checks that name the key and value.
  template <typename T>
  T get_positive(const std::string& key) {
    T v = get<T>(key);
    if (!(v > T(0))) fail(key, "must be > 0, got " + std::to_string(v));
    return v;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  // Declares `keys` the map's only valid keys and throws ConfigError now for any other, listing
  // `keys` in the order given (for maps checked before their values are read).
  void check_keys(const std::vector<std::string>& keys);

  // Throws ConfigError if the map holds keys nobody asked for, listing the valid keys.
  void finish() const;

  const std::string& file() const { return file_; }

 private:
  void touch(const std::string& key) { known_.insert(key); }
  [[noreturn]] void unknown_key(const YAML::Node& key) const;
  YAML::Node node_;
  std::string file_, path_;
  std::set<std::string> known_;
  std::vector<std::string> declared_;  // check_keys()'s list, in its order
};

// Converts a scalar to T, with a ConfigError naming the key path on failure.
template <typename T>
T yaml_as(const YAML::Node& node, const std::string& file, const std::string& key_path);
#define VCYCLE_YAML_AS(T) template <> T yaml_as<T>(const YAML::Node&, const std::string&, const std::string&);
VCYCLE_YAML_AS(double)
VCYCLE_YAML_AS(int64_t)
VCYCLE_YAML_AS(int)
VCYCLE_YAML_AS(bool)
VCYCLE_YAML_AS(std::string)
VCYCLE_YAML_AS(std::vector<double>)
VCYCLE_YAML_AS(std::vector<std::string>)
#undef VCYCLE_YAML_AS

template <typename T>
T YamlReader::get(const std::string& key) {
  touch(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) {
    throw ConfigError(yaml_where(file_, node_), key_path(key), "missing required key");
  }
  return yaml_as<T>(n, file_, key_path(key));
}

}  // namespace vcycle
