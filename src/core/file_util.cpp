// File helpers; see include/vcycle/core/file_util.h.
#include "vcycle/core/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "vcycle/core/errors.h"

namespace vcycle {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
// Crash-safety test hook: with VCYCLE_KILL_DURING_WRITE=N in the environment, the process SIGKILLs
// itself half-way through writing the temp file of its Nth atomic write. An external kill lands
// inside a write only by luck; this makes the worst moment certain. Unset (always, in normal use),
// it costs one getenv per write.
bool kill_during_this_write() {
  static const long target = [] {
    const char* v = std::getenv("VCYCLE_KILL_DURING_WRITE");
    return v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  static long writes = 0;
  return target > 0 && ++writes == target;
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw RunError(tmp + ": cannot create (" + std::strerror(errno) + ")");
  const size_t write_until = kill_during_this_write() ? bytes.size() / 2 : bytes.size();
  size_t done = 0;
  while (done < bytes.size()) {
    if (done >= write_until) std::raise(SIGKILL);  // only with the test hook armed
    const ssize_t n = ::write(fd, bytes.data() + done, write_until - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw RunError(tmp + ": write failed (" + err + ")");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw RunError(tmp + ": fsync/close failed (" + std::strerror(errno) + ")");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw RunError(path + ": rename from " + tmp + " failed (" + std::strerror(errno) + ")");
  }
  const auto dir = std::filesystem::absolute(path).parent_path().string();
  fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

}  // namespace vcycle
