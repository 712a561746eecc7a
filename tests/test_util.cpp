#include "test_util.h"

#include <fstream>
#include <random>

#include "vcycle/data.h"

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

}  // namespace vcycle::test

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "vcycle/file_util.h"

namespace vcycle::test {

int count_lines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

CliResult run_cli(const std::vector<std::string>& args, const std::string& watch, int kill_after_rows) {
  static int counter = 0;
  const std::string log = (std::filesystem::temp_directory_path() /
                           ("vcycle_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".log")).string();
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
  CliResult r;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, kill_after_rows > 0 ? WNOHANG : 0);
    if (done == pid) break;
    if (kill_after_rows > 0 && count_lines(watch) >= kill_after_rows) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.killed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  r.output = read_file(log);
  std::filesystem::remove(log);
  return r;
}

}  // namespace vcycle::test
