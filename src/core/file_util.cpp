// File helpers; see include/vcycle/core/file_util.h.
#include "vcycle/core/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
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

std::string file_kind(const std::string& path, bool follow_links) {
  struct stat st {};
  if ((follow_links ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return "missing";
  if (S_ISREG(st.st_mode)) return "a regular file";
  if (S_ISDIR(st.st_mode)) return "a directory";
  if (S_ISLNK(st.st_mode)) return "a symbolic link";
  if (S_ISFIFO(st.st_mode)) return "a FIFO";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  return "not a regular file";
}

void require_readable_file(const std::string& path, const std::string& what) {
  const std::string kind = file_kind(path, true);
  if (kind == "missing") throw InputError(path + ": " + what + " not found");
  if (kind != "a regular file") throw InputError(path + ": " + what + " is " + kind + ", not a regular file");
}

void require_replaceable(const std::string& path) {
  const std::string kind = file_kind(path, false);
  if (kind != "missing" && kind != "a regular file") {
    throw InputError(path + ": exists and is " + kind + ", not a regular file; refusing to replace it");
  }
}

std::string read_file(const std::string& path) {
  // A directory opens and reads as empty, a FIFO blocks: say what it is instead.
  if (const std::string kind = file_kind(path, true); kind != "missing" && kind != "a regular file") {
    throw InputError(path + ": is " + kind + ", not a regular file");
  }
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

std::string temp_path_for(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

void write_file_atomic(const std::string& path, const std::string& bytes) {
  require_replaceable(path);
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
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
