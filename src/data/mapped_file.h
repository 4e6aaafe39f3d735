// A whole file mapped read-only (the shard readers' storage, text and image alike). Move-only;
// the mapping keeps the file alive after its descriptor is closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace herd::data {

class MappedFile {
 public:
  MappedFile() = default;
  // `name` starts every error ("shard x.bin"); a file shorter than min_bytes is refused as
  // truncated, `header_form` saying what those bytes should be.
  MappedFile(const std::string& path, const std::string& name, uint64_t min_bytes,
             const std::string& header_form);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return static_cast<const char*>(map_); }
  uint64_t size() const { return bytes_; }

 private:
  void release();
  void* map_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace herd::data
