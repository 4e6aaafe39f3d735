// A shard file written under a temporary name and renamed into place only when complete (both
// shard writers' storage, text and image): buffered appends after a zeroed header, every
// write checked, the real header written at offset 0 by commit(), fsync, rename, and the
// directory synced. Destroyed uncommitted (an error, an exception) it removes the temporary:
// `path` never holds a partial shard.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace herd::data {

class StagedFile {
 public:
  // header_bytes zeros are reserved for commit()'s header; appends are written out once the
  // buffer holds flush_bytes.
  StagedFile(std::string path, size_t header_bytes, size_t flush_bytes);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // Neither committed nor failed: appends and commit() are allowed.
  bool writable() const { return fd_ >= 0 && !committed_; }
  void append(const void* data, size_t n);
  // Writes everything left, then `header` (n bytes) at offset 0, and moves the file into place.
  void commit(const void* header, size_t n);
  const std::string& path() const { return path_; }

 private:
  void flush();
  [[noreturn]] void fail(const std::string& message);

  std::string path_, tmp_;
  size_t flush_bytes_;
  int fd_ = -1;
  std::vector<char> buf_;
  bool committed_ = false;
};

}  // namespace herd::data
