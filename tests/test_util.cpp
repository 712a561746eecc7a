#include "test_util.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <random>

#include "vcycle/data/token_data.h"

namespace vcycle::test {

TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / ("vcycle_test_" + tag + "_" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::absolute(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string source_path(const std::string& rel) { return std::string(VCYCLE_SOURCE_DIR) + "/" + rel; }

void prepare_fixture_corpus(const std::string& dir) {
  ByteTokenizer tok;
  PrepareOptions opt;
  opt.chunk_bytes = 1024;
  opt.valid_fraction = 0.1;
  prepare_text(source_path("tests/fixtures/corpus.txt"), dir, tok, opt);
}

void write_idx(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& data) {
  std::string bytes = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (int64_t d : dims) {
    for (int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<char>((static_cast<uint32_t>(d) >> shift) & 0xff));
  }
  bytes.append(reinterpret_cast<const char*>(data.data()), data.size());
  write_text(path, bytes);
}

std::string write_tiny_image_set(const std::string& dir, int64_t train, int64_t valid, int64_t size, int64_t classes) {
  std::mt19937 rng(99);
  for (auto [prefix, n] : {std::pair<std::string, int64_t>{"train", train}, {"t10k", valid}}) {
    std::vector<uint8_t> images(static_cast<size_t>(n * size * size)), labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t label = static_cast<int64_t>(rng() % static_cast<uint32_t>(classes));
      labels[i] = static_cast<uint8_t>(label);
      for (int64_t y = 0; y < size; ++y) {
        const bool bright = y * classes / size == label;
        for (int64_t x = 0; x < size; ++x) images[(i * size + y) * size + x] = static_cast<uint8_t>((bright ? 160 : 20) + rng() % 64);
      }
    }
    write_idx(dir + "/" + prefix + "-images-idx3-ubyte", {n, size, size}, images);
    write_idx(dir + "/" + prefix + "-labels-idx1-ubyte", {n}, labels);
  }
  return dir + "/train-images-idx3-ubyte";
}

}  // namespace vcycle::test

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "vcycle/core/file_util.h"

namespace vcycle::test {

int count_lines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

SpawnedCli spawn_cli(const std::vector<std::string>& args, const std::string& log) {
  std::fflush(nullptr);  // or the child's freopen flushes our buffered output a second time
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    static const std::string cli = VCYCLE_CLI_PATH;
    argv.push_back(const_cast<char*>(cli.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    ::dup2(fileno(stdout), 2);
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::execv(cli.c_str(), argv.data());
    std::_Exit(127);
  }
  return SpawnedCli{pid, log};
}

namespace {

CliResult result_of(int status, const std::string& log) {
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  r.output = read_file(log);
  return r;
}

}  // namespace

CliResult wait_cli(const SpawnedCli& s) {
  int status = 0;
  ::waitpid(s.pid, &status, 0);
  return result_of(status, s.log);
}

CliResult run_cli(const std::vector<std::string>& args, const std::string& watch, int kill_after_rows) {
  static int counter = 0;
  const std::string log = (std::filesystem::temp_directory_path() /
                           ("vcycle_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".log")).string();
  const pid_t pid = spawn_cli(args, log).pid;
  bool killed = false;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, kill_after_rows > 0 ? WNOHANG : 0);
    if (done == pid) break;
    if (kill_after_rows > 0 && count_lines(watch) >= kill_after_rows) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  CliResult r = result_of(status, log);
  r.killed = killed;
  std::filesystem::remove(log);
  return r;
}

}  // namespace vcycle::test

namespace vcycle::test {

std::string debian_python() { return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

CliResult run_shell(const std::string& command) {
  CliResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + command);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace vcycle::test

#include <ATen/Parallel.h>

namespace vcycle::test {

ScopedThreads::ScopedThreads(int n) : saved(at::get_num_threads()) { at::set_num_threads(n); }
ScopedThreads::~ScopedThreads() { at::set_num_threads(saved); }

ScopedCpuKernels::ScopedCpuKernels(CpuKernels k) : saved(cpu_kernels()) { set_cpu_kernels(k); }
ScopedCpuKernels::~ScopedCpuKernels() { set_cpu_kernels(saved); }

}  // namespace vcycle::test
