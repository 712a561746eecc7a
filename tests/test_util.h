// Helpers shared by tests: temporary directories, tiny prepared corpora, config text.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vcycle/models/cpu_kernels.h"

namespace vcycle::test {

// A fresh empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string str(const std::string& child = "") const { return child.empty() ? path_.string() : (path_ / child).string(); }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path` (creating parent directories).
void write_text(const std::string& path, const std::string& text);

// Prepares a small real-English corpus (the README's first chapters, from the repo's tests/fixtures)
// into `dir` (train.bin / valid.bin) with the byte tokenizer.
void prepare_fixture_corpus(const std::string& dir);

// Writes an uncompressed IDX file of unsigned bytes (magic 0x00 0x00 0x08 n, big-endian sizes, data).
void write_idx(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& data);

// A tiny MNIST-like image set in `dir`: {train,t10k}-{images-idx3,labels-idx1}-ubyte with `train` and
// `valid` grey images of size × size and labels in [0, classes), learnable (the label says which
// horizontal band of the image is bright). Returns the train images path; the valid one is
// `dir/t10k-images-idx3-ubyte`.
std::string write_tiny_image_set(const std::string& dir, int64_t train, int64_t valid, int64_t size, int64_t classes);

// Path of the repository's file `rel` (tests read fixtures from the source tree).
std::string source_path(const std::string& rel);

}  // namespace vcycle::test

namespace vcycle::test {

struct CliResult {
  int exit_code = -1;   // process exit code, or -1 if killed
  bool killed = false;  // we sent SIGKILL
  int signal = 0;       // the signal that ended it, if one did (ours or its own)
  std::string output;   // stdout + stderr
};

// The vcycle program started in the background with `args`, its stdout and stderr going to `log`.
struct SpawnedCli {
  pid_t pid = -1;
  std::string log;
};
SpawnedCli spawn_cli(const std::vector<std::string>& args, const std::string& log);
// Waits for a spawned program to end; its exit code or signal and its output.
CliResult wait_cli(const SpawnedCli& s);

// Runs the vcycle program with `args`. If `kill_after_rows` > 0, SIGKILLs it as soon as the file
// `watch` has at least that many lines (or when it exits on its own first).
CliResult run_cli(const std::vector<std::string>& args, const std::string& watch = "", int kill_after_rows = 0);

// Number of lines in a file (0 if missing).
int count_lines(const std::string& path);

// Sets an environment variable for the scope (unset again, or restored, at its end).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// at::set_num_threads for the scope (the fused CPU kernels' tests run 1 and 2 threads).
struct ScopedThreads {
  explicit ScopedThreads(int n);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;
  int saved;
};

// set_cpu_kernels for the scope (the fused CPU kernels against LibTorch's ops).
struct ScopedCpuKernels {
  explicit ScopedCpuKernels(CpuKernels k);
  ~ScopedCpuKernels();
  ScopedCpuKernels(const ScopedCpuKernels&) = delete;
  ScopedCpuKernels& operator=(const ScopedCpuKernels&) = delete;
  CpuKernels saved;
};

// Debian's Python interpreter, where python3-torch, -numpy and -sentencepiece (tools/install-deps.sh)
// install, whatever other python3 comes first on PATH.
std::string debian_python();

// Runs a shell command line; its exit code and stdout + stderr.
CliResult run_shell(const std::string& command);

}  // namespace vcycle::test
