// Metrics log: one JSON object per line (JSONL), appended row by row, each row with one write(2) so
// that no kill leaves half a row.
//
// The writer knows its byte offset; a checkpoint records it, and resuming truncates the file back to
// it, so an interrupted-and-resumed run has exactly the rows of an uninterrupted one.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace vcycle {

class MetricsWriter {
 public:
  // Opens `path`; truncates it to `offset` bytes (0 = start afresh). InputError, before anything is
  // changed, if the file is shorter than `offset` or does not end a row there.
  MetricsWriter(std::string path, uint64_t offset);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void append(const std::string& json_line);  // one JSON object, no newline
  uint64_t offset() const { return offset_; }
  void sync();  // fsync; called before a checkpoint records the offset

 private:
  std::string path_;
  int fd_ = -1;  // O_APPEND: each row is one write(2)
  uint64_t offset_ = 0;
};

// Reads every row of a JSONL file as JSON text lines (skipping a torn last line).
std::vector<std::string> read_jsonl_lines(const std::string& path);

}  // namespace vcycle
