// Error types and the exit codes the command line maps them to.
//
//   InputError  — bad input: a config key, a data file, a checkpoint, a CLI argument. Exit code 2.
//   RunError    — the run itself failed (non-finite loss, I/O failure while training). Exit code 3.
//   StopRequested — SIGINT / SIGTERM / SIGHUP stopped the run after a checkpoint. Exit code 128 + signal.
// Every message names what is at fault (file, key path, tensor) so the user can fix it.
#pragma once

#include <stdexcept>
#include <string>

namespace vcycle {

constexpr int kExitOk = 0;
constexpr int kExitBadInput = 2;
constexpr int kExitRunFailed = 3;

struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A configuration error: `where` is "file:line" or "file", `key` the dotted path ("phases[1].lr").
struct ConfigError : InputError {
  ConfigError(const std::string& where, const std::string& key, const std::string& what)
      : InputError(where + ": " + (key.empty() ? std::string() : key + ": ") + what), key_path(key) {}
  std::string key_path;  // e.g. "phases[1].lr"; empty when the whole file is at fault
};

struct RunError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The run stopped cleanly on a signal (stop_signal.h): a checkpoint was written and --resume continues.
struct StopRequested : std::runtime_error {
  StopRequested(const std::string& what, int signal) : std::runtime_error(what), signo(signal) {}
  int signo;  // the signal that asked for the stop
  int exit_code() const { return 128 + signo; }
};

}  // namespace vcycle
