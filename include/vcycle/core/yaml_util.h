// Strict YAML reading: every key checked, every error names the file, key path and line.
//
//   YamlReader r(node, "configs/x.yaml", "phases[1]");
//   double lr = r.get<double>("lr");            // required
//   int64_t w = r.get_or<int64_t>("warmup", 0); // optional
//   r.finish();                                  // unknown keys -> ConfigError listing valid ones
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

  // Throws ConfigError if the map holds keys nobody asked for, listing the valid keys.
  void finish() const;

  const std::string& file() const { return file_; }

 private:
  void touch(const std::string& key) { known_.insert(key); }
  YAML::Node node_;
  std::string file_, path_;
  std::set<std::string> known_;
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

// Reads the block sizes every built-in transformer shares (GPT, BERT, ViT) from a model section:
// layers, hidden, heads, optional head_size (default hidden / heads, which must divide) and
// optional ffn (default 4·hidden).
template <class Config>
void read_transformer_sizes(YamlReader& r, Config& c) {
  c.layers = r.get_positive<int64_t>("layers");
  c.hidden = r.get_positive<int64_t>("hidden");
  c.heads = r.get_positive<int64_t>("heads");
  if (r.has("head_size")) {
    c.head_size = r.get_positive<int64_t>("head_size");
  } else {
    if (c.hidden % c.heads != 0) {
      r.fail("heads", "hidden (" + std::to_string(c.hidden) + ") is not divisible by heads (" + std::to_string(c.heads) +
                          "); set head_size explicitly");
    }
    c.head_size = c.hidden / c.heads;
  }
  c.ffn = r.get_or<int64_t>("ffn", 4 * c.hidden);
  if (c.ffn <= 0) r.fail("ffn", "must be > 0, got " + std::to_string(c.ffn));
}

}  // namespace vcycle
