// JSONL metrics; see include/vcycle/core/metrics.h.
#include "vcycle/core/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"

namespace vcycle {

MetricsWriter::MetricsWriter(std::string path, uint64_t offset) : path_(std::move(path)), offset_(offset) {
  std::error_code ec;
  require_replaceable(path_);
  const bool exists = std::filesystem::exists(path_, ec);
  if (exists) {
    const auto size = std::filesystem::file_size(path_, ec);
    if (size < offset_) {
      throw InputError(path_ + ": metrics file is shorter (" + std::to_string(size) + " bytes) than the checkpoint records (" +
                       std::to_string(offset_) + ")");
    }
    // The rows the checkpoint kept must end in a whole line: otherwise the file is not the one the
    // checkpoint was taken with, and truncating it would keep a torn row.
    if (offset_ > 0) {
      std::ifstream in(path_, std::ios::binary);
      char last = 0;
      in.seekg(static_cast<std::streamoff>(offset_ - 1));
      if (!in.get(last) || last != '\n') {
        throw InputError(path_ + ": metrics file does not end a row at the " + std::to_string(offset_) +
                         " bytes the checkpoint records (the file was changed since)");
      }
    }
    std::filesystem::resize_file(path_, offset_);
  } else if (offset_ != 0) {
    throw InputError(path_ + ": metrics file is missing but the checkpoint records " + std::to_string(offset_) + " bytes");
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw RunError(path_ + ": cannot open metrics file (" + std::strerror(errno) + ")");
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsWriter::append(const std::string& json_line) {
  // One write(2) of the whole line: a kill leaves the file with or without the row, never half of it.
  // A short write (disk full) is cut back off so that the file still ends in a whole row.
  const std::string line = json_line + "\n";
  ssize_t n;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(line.size())) {
    const std::string err = n < 0 ? std::strerror(errno) : "short write";
    if (::ftruncate(fd_, static_cast<off_t>(offset_)) != 0) {
      // Nothing more can be done here; the next resume truncates to the checkpoint's offset anyway.
    }
    throw RunError(path_ + ": cannot write metrics (" + err + ")");
  }
  offset_ += line.size();
}

void MetricsWriter::sync() { ::fsync(fd_); }

std::vector<std::string> read_jsonl_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open metrics file");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no trailing newline: a row torn by a crash
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace vcycle
