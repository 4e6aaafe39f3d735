// File helpers for the data pipeline: whole-file reads, crash-safe writes and the few path
// operations it needs. POSIX rather than std::filesystem: torch's wheels export their own,
// incompatible copies of the std::filesystem symbols (pytorch/pytorch#133437).
#pragma once

#include <string>
#include <vector>

namespace herd::data {

// The whole file; throws herd::Error naming `path` when it cannot be read.
std::string read_file(const std::string& path, const char* what = "file");

// Writes to a temporary file beside `path`, fsyncs, renames over `path`, fsyncs the directory:
// readers see the old content or the new, never a part.
void write_file_atomic(const std::string& path, const std::string& bytes);

// A unique temporary name beside `path` (same directory, so rename() is atomic).
std::string temp_path_for(const std::string& path);

// fsync() on the directory holding `path` so that a rename survives a crash.
void sync_parent_dir(const std::string& path);

// Path helpers (plain string operations on '/'-separated paths).
std::string base_name(const std::string& path);  // "a/b.bin" -> "b.bin"
std::string dir_name(const std::string& path);   // "a/b.bin" -> "a", "b.bin" -> "."
std::string join_path(const std::string& dir, const std::string& name);
// Absolute and without "." / ".." components (lexically; symlinks are kept).
std::string absolute_path(const std::string& path);

bool is_regular_file(const std::string& path);
bool is_directory(const std::string& path);
// mkdir -p; throws herd::Error naming the path.
void make_dirs(const std::string& path);
// Names of the entries of a directory (no "." / ".."), sorted; throws when unreadable.
std::vector<std::string> list_dir(const std::string& dir);
// rm -rf; missing paths are fine. For tests and scratch directories.
void remove_tree(const std::string& path);

}  // namespace herd::data
