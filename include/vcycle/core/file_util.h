// Small file helpers: whole-file reads and crash-safe writes (temp file, fsync, rename).
#pragma once

#include <string>

namespace vcycle {

// Reads a whole file; InputError naming the path if it cannot.
std::string read_file(const std::string& path);

// Writes `bytes` to `path` so that a crash at any moment leaves either the old file or the new one:
// write to temp_path_for(path), fsync, rename over `path`, fsync the directory. A `path` that exists
// and is not a regular file (directory, symlink, FIFO, device) is refused with InputError naming it:
// the rename would put a regular file in its place.
void write_file_atomic(const std::string& path, const std::string& bytes);

// The temp file write_file_atomic writes first: "path.tmp.<pid>", unique per process so that two
// writers never share one.
std::string temp_path_for(const std::string& path);

// InputError naming `path` if it exists and is not a regular file (lstat: a symlink is refused too).
void require_replaceable(const std::string& path);

// InputError "path: <what> not found" / "path: <what> is a directory, not a regular file" (or FIFO,
// device ...) unless `path` is (a link to) a regular file. `what` names the role: "config file".
void require_readable_file(const std::string& path, const std::string& what);

// What lives at `path`: "a regular file", "a directory", "a FIFO", "a character device", ... or
// "missing"; with follow_links false a symlink is "a symbolic link" rather than what it points to.
std::string file_kind(const std::string& path, bool follow_links = true);

}  // namespace vcycle
