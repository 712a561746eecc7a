// One writer per run directory.
//
//   lock_run_directory("runs/x");   // InputError "runs/x is in use by pid N" if another process holds it
//
// The lock is an exclusive flock(2) on "<dir>/.vcycle.lock", taken without waiting and held until the
// process exits: the kernel releases it when the process dies however it dies, so a SIGKILLed run
// never leaves a stale lock behind. The lock file holds the pid of its holder for the message.
// Locking a directory this process already holds is a no-op.
#pragma once

#include <string>

namespace vcycle {

// The lock file's name inside a run directory.
inline constexpr const char* kRunLockFile = ".vcycle.lock";

// Creates `dir` if needed and takes its lock for the rest of the process's life.
void lock_run_directory(const std::string& dir);

}  // namespace vcycle
