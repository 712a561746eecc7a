// Small file helpers: whole-file reads and crash-safe writes (temp file, fsync, rename).
#pragma once

#include <string>

namespace vcycle {

// Reads a whole file; InputError naming the path if it cannot.
std::string read_file(const std::string& path);

// Writes `bytes` to `path` so that a crash at any moment leaves either the old file or the new one:
// write to "path.tmp", fsync, rename over `path`, fsync the directory.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace vcycle
