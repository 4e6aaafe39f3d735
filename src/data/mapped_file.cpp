#include "data/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace herd::data {

MappedFile::MappedFile(const std::string& path, const std::string& name, uint64_t min_bytes,
                       const std::string& header_form) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  HERD_CHECK(fd >= 0, name, ": cannot open ", path, " (", std::strerror(errno), ")");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(str(name, ": cannot stat (", std::strerror(err), ")"));
  }
  const uint64_t bytes = static_cast<uint64_t>(st.st_size);
  if (bytes < min_bytes) {
    ::close(fd);
    throw Error(str(name, ": truncated: ", bytes, " bytes (expected a ", min_bytes, "-byte ",
                    header_form, ")"));
  }
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  HERD_CHECK(map != MAP_FAILED, name, ": mmap failed (", std::strerror(err), ")");
  map_ = map;
  bytes_ = bytes;
}

MappedFile::~MappedFile() {
  release();
}

void MappedFile::release() {
  if (map_ != nullptr) ::munmap(map_, bytes_);
  map_ = nullptr;
  bytes_ = 0;
}

MappedFile::MappedFile(MappedFile&& other) noexcept {
  *this = std::move(other);
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    map_ = std::exchange(other.map_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

}  // namespace herd::data
