// tools/gpu-check.sh and tools/gpu-deps.sh as far as a machine without a GPU can run them: the
// check refuses at once, naming what is missing; the dependency preparation downloads and unpacks
// Debian's packages (needs network, as CI has) and the script's configure step finds every library
// in them (with CUDA off, against Debian's LibTorch).

#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "test_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
namespace fs = std::filesystem;

namespace {

struct Shell {
  int exit_code = -1;
  std::string output;
  double seconds = 0;
};

// Runs `command` with sh, stdout and stderr together.
Shell sh(const std::string& command) {
  const auto t0 = std::chrono::steady_clock::now();
  Shell r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::string q(const std::string& s) { return "'" + s + "'"; }

// An executable script at `path`.
void script(const std::string& path, const std::string& body) {
  test::write_text(path, "#!/bin/sh\n" + body + "\n");
  ::chmod(path.c_str(), 0755);
}

std::string cache_value(const std::string& cache, const std::string& key) {
  std::ifstream in(cache);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return line.substr(line.find('=') + 1);
  return "";
}

}  // namespace

TEST_CASE("gpu-check.sh without a GPU fails at once with exit 2 saying why", "[gpu-scripts]") {
  test::TempDir dir("gpu_check");
  const std::string run = "cd " + q(test::source_path("")) + " && ";
  // No OUT.
  auto r = sh(run + "env -u OUT tools/gpu-check.sh");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("set OUT") != std::string::npos);
  // No nvidia-smi on PATH (a PATH of the basic tools only).
  fs::create_directories(dir.path() / "bin");
  for (const char* tool : {"bash", "sh", "dirname", "head", "mkdir", "cat", "env"}) {
    const auto found = sh(std::string("command -v ") + tool);
    std::string where = found.output.substr(0, found.output.find('\n'));
    REQUIRE(!where.empty());
    fs::create_symlink(where, dir.path() / "bin" / tool);
  }
  const std::string out = "OUT=" + q(dir.str("out")) + " ";
  r = sh(run + out + "PATH=" + q(dir.str("bin")) + " bash tools/gpu-check.sh");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("no GPU: nvidia-smi not found") != std::string::npos);
  // nvidia-smi that lists no GPU.
  script(dir.str("bin/nvidia-smi"), "exit 0");
  r = sh(run + out + "PATH=" + q(dir.str("bin")) + " bash tools/gpu-check.sh");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("no GPU: nvidia-smi lists none") != std::string::npos);
  // A GPU listed, but PyTorch sees no CUDA.
  script(dir.str("bin/nvidia-smi"), "echo 'NVIDIA H200'");
  script(dir.str("python-no-cuda"), "exit 1");
  r = sh(run + out + "PATH=" + q(dir.str("bin")) + " PYTHON=" + q(dir.str("python-no-cuda")) + " bash tools/gpu-check.sh");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("torch.cuda.is_available() is false") != std::string::npos);
  CHECK(r.seconds < 10);
  // Nothing was built: the check comes first.
  CHECK_FALSE(fs::exists(test::source_path("build-gpu")));
}

TEST_CASE("gpu-deps.sh --dry-run lists every package and touches nothing", "[gpu-scripts]") {
  test::TempDir dir("gpu_deps_dry");
  const auto r = sh("cd " + q(test::source_path("")) + " && tools/gpu-deps.sh --dry-run --dest " + q(dir.str("deps")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* p : {"libyaml-cpp-dev", "libyaml-cpp0.7", "libfmt-dev", "libfmt9", "libcli11-dev", "nlohmann-json3-dev",
                        "catch2", "libgloo-dev", "zlib1g-dev"}) {
    CHECK(r.output.find(std::string("apt-get download ") + p + ")") != std::string::npos);
  }
  CHECK(r.output.find("dpkg -x") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.str("deps")));
  const auto bad = sh("cd " + q(test::source_path("")) + " && tools/gpu-deps.sh --frobnicate");
  CHECK(bad.exit_code == 2);
}

TEST_CASE("gpu-deps.sh unpacks Debian's packages and gpu-check.sh's configure step finds them all", "[gpu-scripts][network]") {
  // The .debs are kept between runs (gpu-deps.sh reuses them), so only the first run downloads.
  const std::string deps = (fs::temp_directory_path() / "vcycle-test-gpu-deps").string();
  test::TempDir dir("gpu_configure");
  const std::string src = q(test::source_path(""));
  const auto prep = sh("cd " + src + " && tools/gpu-deps.sh --no-sources --dest " + q(deps));
  INFO(prep.output);
  REQUIRE(prep.exit_code == 0);
  CHECK(fs::exists(deps + "/root/usr/include/yaml-cpp/yaml.h"));
  CHECK(fs::exists(deps + "/root/usr/include/CLI/CLI.hpp"));
  CHECK(fs::exists(deps + "/root/usr/include/gloo/config.h"));
  const auto conf = sh("cd " + src + " && OUT=" + q(dir.str("out")) + " tools/gpu-check.sh --cpu --configure-only --deps " +
                       q(deps) + " --build " + q(dir.str("build")));
  std::ifstream log(dir.str("out/configure.log"));
  const std::string configure_log((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  INFO(conf.output << configure_log);
  REQUIRE(conf.exit_code == 0);
  // Every library the build needs besides LibTorch came from the unpacked packages.
  const std::string cache = dir.str("build/CMakeCache.txt");
  const std::string root = fs::canonical(deps).string() + "/root/usr/";
  for (const char* key : {"yaml-cpp_DIR", "fmt_DIR", "CLI11_DIR", "nlohmann_json_DIR", "Catch2_DIR", "VCYCLE_GLOO_INCLUDE_DIR"}) {
    INFO(key);
    CHECK(cache_value(cache, key).rfind(root, 0) == 0);
  }
  CHECK(cache_value(cache, "VCYCLE_WITH_CUDA") == "OFF");
  CHECK(cache_value(cache, "CMAKE_BUILD_RPATH").find(root + "lib/") == 0);
}
