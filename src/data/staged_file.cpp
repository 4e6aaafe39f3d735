#include "data/staged_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "data/file_util.h"

namespace herd::data {
namespace {

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

StagedFile::StagedFile(std::string path, size_t header_bytes, size_t flush_bytes)
    : path_(std::move(path)), tmp_(temp_path_for(path_)), flush_bytes_(flush_bytes) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  HERD_CHECK(fd_ >= 0, path_, ": cannot create shard (", std::strerror(errno), ")");
  buf_.assign(header_bytes, 0);  // the real header is written by commit()
  buf_.reserve(flush_bytes + header_bytes);
}

StagedFile::~StagedFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void StagedFile::fail(const std::string& message) {
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  throw Error(str(path_, ": ", message));
}

void StagedFile::flush() {
  if (!write_all(fd_, buf_.data(), buf_.size()))
    fail(str("write failed (", std::strerror(errno), ")"));
  buf_.clear();
}

void StagedFile::append(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  buf_.insert(buf_.end(), p, p + n);
  if (buf_.size() >= flush_bytes_) flush();
}

void StagedFile::commit(const void* header, size_t n) {
  flush();
  if (::pwrite(fd_, header, n, 0) != static_cast<ssize_t>(n))
    fail(str("header write failed (", std::strerror(errno), ")"));
  if (::fsync(fd_) != 0) fail(str("fsync failed (", std::strerror(errno), ")"));
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0 || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    throw Error(str(path_, ": cannot write shard (", std::strerror(err), ")"));
  }
  committed_ = true;
  sync_parent_dir(path_);
}

}  // namespace herd::data
