// The layering rule on includes (README "Layout"): the library is a stack of layers, and a file may
// include vcycle headers of its own layer or of a lower one, never of a higher one:
//
//   core < data < optim < operators < config < models < schedules < io < tools
//
// A private header (one outside include/, such as src/optim/common.h) may be included only from its
// own folder or a folder below it. include/deprecated/ (forwarding headers at the 0.1 paths) is
// outside the rule. The check reads the tree as text, so it holds for code that is not compiled here
// (the CUDA sources) too.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kLayers = {"core", "data", "optim", "operators", "config", "models", "schedules", "io", "tools"};

// Repository-relative path prefixes of each layer's headers and sources.
struct Prefix {
  const char* prefix;
  const char* layer;
};
const Prefix kPrefixes[] = {
    {"include/vcycle/core/", "core"},           {"src/core/", "core"},
    {"include/vcycle/data/", "data"},           {"src/data/", "data"},
    {"include/vcycle/optim/", "optim"},         {"include/vcycle/optim.h", "optim"},
    {"src/optim/", "optim"},                    {"include/vcycle/operators/", "operators"},
    {"operators/", "operators"},                {"include/vcycle/config/", "config"},
    {"src/config/", "config"},                  {"include/vcycle/models/", "models"},
    {"src/models/", "models"},                  {"include/vcycle/schedules/", "schedules"},
    {"schedules/", "schedules"},                {"include/vcycle/io/", "io"},
    {"src/io/", "io"},                          {"include/vcycle/cli.h", "tools"},
    {"include/vcycle/version.h", "core"},  // generated from cmake/version.h.in
    {"tools/cli/", "tools"},
};

// The layer's rank (0 = core), or nothing for a path outside the layered folders.
std::optional<size_t> layer_rank(const std::string& rel) {
  for (const auto& p : kPrefixes) {
    if (rel.rfind(p.prefix, 0) == 0) {
      return static_cast<size_t>(std::find(kLayers.begin(), kLayers.end(), p.layer) - kLayers.begin());
    }
  }
  return std::nullopt;
}

// Collapses "a/b/../c" to "a/c" (lexically; the file need not exist).
std::string normal(const fs::path& p) { return p.lexically_normal().generic_string(); }

}  // namespace

namespace vcycle::test {

// Why `file` (repository-relative) may not include `target` (as written between the quotes or angle
// brackets), or "" when it may.
std::string include_violation(const std::string& file, const std::string& target) {
  const auto from = layer_rank(file);
  if (!from) return "";
  if (target.rfind("vcycle/", 0) == 0) {
    const std::string header = "include/" + target;
    const auto to = layer_rank(header);
    if (!to) return file + " includes <" + target + ">, which is in no layer (include the header at its new path)";
    if (*to > *from) {
      return file + " (layer " + kLayers[*from] + ") includes <" + target + "> of the higher layer " + kLayers[*to];
    }
    return "";
  }
  // A private header, relative to the including file: it must sit in the same folder or below.
  const std::string dir = normal(fs::path(file).parent_path());
  const std::string header = normal(fs::path(file).parent_path() / target);
  if (header.rfind(dir + "/", 0) != 0) {
    return file + " includes the private header " + header + " of another folder";
  }
  return "";
}

// Every violation in the tree rooted at `root`.
std::vector<std::string> include_violations(const fs::path& root) {
  static const std::regex include_line(R"(^\s*#\s*include\s*["<]([^">]+)[">])");
  std::vector<std::string> found;
  for (const char* top : {"include/vcycle", "src", "operators", "schedules", "tools"}) {
    if (!fs::exists(root / top)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / top)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || !(ext == ".h" || ext == ".cpp" || ext == ".cu" || ext == ".cuh")) continue;
      const std::string rel = normal(fs::relative(entry.path(), root));
      std::ifstream in(entry.path());
      std::string line;
      std::smatch m;
      while (std::getline(in, line)) {
        if (!std::regex_search(line, m, include_line)) continue;
        const std::string target = m[1];
        // System and third-party headers (<torch/...>, <fmt/...>) are outside the rule; so are relative
        // includes that resolve to no file here — the compiler finds those elsewhere.
        const bool vcycle_header = target.rfind("vcycle/", 0) == 0;
        const bool private_header = line.find('"') != std::string::npos && !vcycle_header &&
                                    fs::exists(entry.path().parent_path() / target);
        if (!vcycle_header && !private_header) continue;
        const std::string why = include_violation(rel, target);
        if (!why.empty()) found.push_back(why);
      }
    }
  }
  return found;
}

}  // namespace vcycle::test

using vcycle::test::include_violation;
using vcycle::test::include_violations;

TEST_CASE("layers: every include in the source tree points to its own layer or a lower one", "[layers]") {
  const auto found = include_violations(vcycle::test::source_path(""));
  for (const auto& v : found) UNSCOPED_INFO(v);
  CHECK(found.empty());
}

TEST_CASE("layers: the rule itself", "[layers]") {
  // Down and sideways are allowed.
  CHECK(include_violation("schedules/cycle_runner.cpp", "vcycle/core/errors.h").empty());
  CHECK(include_violation("src/models/gpt/gpt.cpp", "vcycle/models/attention.h").empty());
  CHECK(include_violation("src/config/run_config.cpp", "vcycle/optim/registry.h").empty());
  CHECK(include_violation("include/vcycle/optim.h", "vcycle/optim/came.h").empty());
  CHECK(include_violation("src/optim/came.cpp", "cuda/optim_cuda.h").empty());
  CHECK(include_violation("tools/cli/main.cpp", "vcycle/cli.h").empty());
  CHECK(include_violation("tools/cli/train.cpp", "vcycle/schedules/experiment.h").empty());
  // Up is not, and the message names both ends.
  const std::string up = include_violation("src/config/run_config.cpp", "vcycle/models/registry.h");
  CHECK(up.find("src/config/run_config.cpp (layer config)") != std::string::npos);
  CHECK(up.find("higher layer models") != std::string::npos);
  CHECK_FALSE(include_violation("src/core/distributed.cpp", "vcycle/config/run_config.h").empty());
  CHECK_FALSE(include_violation("include/vcycle/data/token_data.h", "vcycle/models/model_adapter.h").empty());
  CHECK_FALSE(include_violation("schedules/experiment.cpp", "vcycle/cli.h").empty());
  // A flat 0.1 path is in no layer.
  CHECK_FALSE(include_violation("tools/cli/train.cpp", "vcycle/config.h").empty());
  // Another folder's private header.
  CHECK_FALSE(include_violation("operators/state_projection.cpp", "../src/optim/common.h").empty());
  // Files outside the layered folders are not checked.
  CHECK(include_violation("tests/layers_test.cpp", "vcycle/schedules/experiment.h").empty());
}

TEST_CASE("layers: a wrong-way include added to a copy of a file is found", "[layers]") {
  vcycle::test::TempDir dir("layers");
  vcycle::test::write_text(dir.str("src/core/bad.cpp"), "#include \"vcycle/core/errors.h\"\n#include \"vcycle/schedules/experiment.h\"\n");
  vcycle::test::write_text(dir.str("operators/ok.cpp"), "#include <vcycle/optim/registry.h>\n#include <torch/torch.h>\n");
  const auto found = include_violations(dir.path());
  REQUIRE(found.size() == 1);
  CHECK(found[0].find("src/core/bad.cpp (layer core) includes <vcycle/schedules/experiment.h>") != std::string::npos);
}
