// JSONL metrics; see include/vcycle/core/metrics.h.
#include "vcycle/core/metrics.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "vcycle/core/errors.h"

namespace vcycle {

MetricsWriter::MetricsWriter(std::string path, uint64_t offset) : path_(std::move(path)), offset_(offset) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path_, ec);
  if (exists) {
    const auto size = std::filesystem::file_size(path_, ec);
    if (size < offset_) {
      throw InputError(path_ + ": metrics file is shorter (" + std::to_string(size) + " bytes) than the checkpoint records (" +
                       std::to_string(offset_) + ")");
    }
    std::filesystem::resize_file(path_, offset_);
  } else if (offset_ != 0) {
    throw InputError(path_ + ": metrics file is missing but the checkpoint records " + std::to_string(offset_) + " bytes");
  }
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr) throw RunError(path_ + ": cannot open metrics file (" + std::strerror(errno) + ")");
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsWriter::append(const std::string& json_line) {
  const std::string line = json_line + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw RunError(path_ + ": cannot write metrics (" + std::strerror(errno) + ")");
  }
  offset_ += line.size();
}

void MetricsWriter::sync() { ::fsync(fileno(file_)); }

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
