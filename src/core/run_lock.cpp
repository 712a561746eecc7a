// Run-directory locks; see include/vcycle/core/run_lock.h.
#include "vcycle/core/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "vcycle/core/errors.h"

namespace vcycle {

namespace fs = std::filesystem;

namespace {

// The lock files this process holds, by path, with the identity of the file they lock (a directory
// removed and made again at the same path is a different lock). Never closed: held until exit.
struct Held {
  int fd;
  dev_t dev;
  ino_t ino;
};
std::mutex g_mutex;
std::map<std::string, Held> g_held;

// The pid the holder wrote into the lock file; it writes it right after locking, so a reader that
// comes in between waits a moment for it.
std::string holder_pid(int fd) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0 && buf[n - 1] == '\n') return std::string(buf, static_cast<size_t>(n - 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return "?";
}

}  // namespace

void lock_run_directory(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) {
    throw InputError(dir + ": cannot be used as a run directory (" +
                     (fs::exists(dir, ec) ? std::string("it exists and is not a directory") : ec.message()) + ")");
  }
  const std::string path = (fs::path(dir) / kRunLockFile).string();
  const std::string key = fs::weakly_canonical(fs::absolute(path), ec).string();
  std::lock_guard<std::mutex> guard(g_mutex);
  struct stat st {};
  if (const auto it = g_held.find(key); it != g_held.end()) {
    if (::stat(path.c_str(), &st) == 0 && st.st_dev == it->second.dev && st.st_ino == it->second.ino) return;
    ::close(it->second.fd);  // the directory was replaced: that lock guards nothing any more
    g_held.erase(it);
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) throw RunError(path + ": cannot open the run directory's lock file (" + std::strerror(errno) + ")");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      const std::string pid = holder_pid(fd);
      ::close(fd);
      throw InputError(dir + " is in use by pid " + pid + " (one process writes a run directory at a time)");
    }
    ::close(fd);
    throw RunError(path + ": cannot lock (" + std::strerror(err) + ")");
  }
  // One write of the whole line: a reader sees either nothing or the pid with its newline.
  const std::string line = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
    const int err = errno;
    ::close(fd);
    throw RunError(path + ": cannot write the lock file (" + std::strerror(err) + ")");
  }
  ::fstat(fd, &st);
  g_held[key] = Held{fd, st.st_dev, st.st_ino};
}

}  // namespace vcycle
