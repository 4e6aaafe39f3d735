#include "data/image/image_shard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "data/file_util.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "shard I/O assumes a little-endian host");

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

constexpr int64_t kMaxSide = 1 << 16;

}  // namespace

uint64_t image_shard_labels_offset(uint64_t n, const ImageShape& shape) {
  uint64_t end = kImageShardHeaderBytes + n * shape.pixels();
  return (end + 7) / 8 * 8;
}

ImageShardWriter::ImageShardWriter(std::string path, ImageShape shape)
    : path_(std::move(path)), tmp_(temp_path_for(path_)), shape_(shape) {
  HERD_CHECK(shape.height > 0 && shape.width > 0 && shape.height <= kMaxSide &&
                 shape.width <= kMaxSide && (shape.channels == 1 || shape.channels == 3),
             path_, ": image shape ", shape.height, "x", shape.width, "x", shape.channels,
             " (expected sides 1..", kMaxSide, " and 1 or 3 channels)");
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  HERD_CHECK(fd_ >= 0, path_, ": cannot create shard (", std::strerror(errno), ")");
  buf_.assign(kImageShardHeaderBytes, 0);  // the real header is written by finish()
  buf_.reserve(1 << 22);
}

ImageShardWriter::~ImageShardWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(tmp_.c_str());
}

void ImageShardWriter::fail(const std::string& message) {
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  throw Error(str(path_, ": ", message));
}

void ImageShardWriter::flush() {
  if (!write_all(fd_, buf_.data(), buf_.size()))
    fail(str("write failed (", std::strerror(errno), ")"));
  buf_.clear();
}

void ImageShardWriter::append(const uint8_t* pixels, int32_t label) {
  HERD_CHECK(fd_ >= 0 && !finished_, path_, ": append after finish or failure");
  HERD_CHECK(labels_.size() < kImageShardMaxImages, path_, ": more than ", kImageShardMaxImages,
             " images in one shard (use a smaller --shard-images)");
  HERD_CHECK(label >= 0, path_, ": negative label ", label);
  const char* p = reinterpret_cast<const char*>(pixels);
  buf_.insert(buf_.end(), p, p + shape_.pixels());
  labels_.push_back(label);
  if (buf_.size() >= (1 << 22)) flush();
}

void ImageShardWriter::finish() {
  HERD_CHECK(fd_ >= 0 && !finished_, path_, ": finish after finish or failure");
  const uint64_t n = labels_.size();
  const uint64_t pad =
      image_shard_labels_offset(n, shape_) - kImageShardHeaderBytes - n * shape_.pixels();
  buf_.insert(buf_.end(), pad, 0);
  const char* l = reinterpret_cast<const char*>(labels_.data());
  buf_.insert(buf_.end(), l, l + n * sizeof(int32_t));
  flush();
  int32_t header[256] = {};
  header[0] = kImageShardMagic;
  header[1] = kImageShardVersion;
  header[2] = static_cast<int32_t>(n);
  header[3] = static_cast<int32_t>(shape_.height);
  header[4] = static_cast<int32_t>(shape_.width);
  header[5] = static_cast<int32_t>(shape_.channels);
  if (::pwrite(fd_, header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header)))
    fail(str("header write failed (", std::strerror(errno), ")"));
  if (::fsync(fd_) != 0) fail(str("fsync failed (", std::strerror(errno), ")"));
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0 || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    throw Error(str(path_, ": cannot write shard (", std::strerror(err), ")"));
  }
  finished_ = true;
  sync_parent_dir(path_);
}

ImageShardReader::ImageShardReader(const std::string& path)
    : path_(path),
      file_(path, "image shard " + path, kImageShardHeaderBytes, "header of 256 int32") {
  const std::string name = "image shard " + path;
  const uint64_t bytes = file_.size();
  int32_t h[6];
  std::memcpy(h, file_.data(), sizeof(h));
  HERD_CHECK(h[0] == kImageShardMagic, name, ": bad magic ", h[0], " (expected ", kImageShardMagic,
             ", a herd image shard)");
  HERD_CHECK(h[1] == kImageShardVersion, name, ": version ", h[1], " (this herd reads ",
             kImageShardVersion, ")");
  HERD_CHECK(h[2] >= 0, name, ": negative image count ", h[2]);
  HERD_CHECK(
      h[3] > 0 && h[4] > 0 && h[3] <= kMaxSide && h[4] <= kMaxSide && (h[5] == 1 || h[5] == 3),
      name, ": image shape ", h[3], "x", h[4], "x", h[5], " in header (expected sides 1..",
      kMaxSide, " and 1 or 3 channels)");
  count_ = static_cast<uint64_t>(h[2]);
  shape_ = ImageShape{h[3], h[4], h[5]};
  const uint64_t labels_at = image_shard_labels_offset(count_, shape_);
  const uint64_t expected = labels_at + count_ * sizeof(int32_t);
  HERD_CHECK(bytes == expected, name, ": ", bytes, " bytes but the header counts ", count_,
             " images of ", h[3], "x", h[4], "x", h[5], " (expected ", expected, " bytes; ",
             bytes < expected ? "truncated file" : "trailing bytes or wrong count", ")");
  pixels_ = reinterpret_cast<const uint8_t*>(file_.data()) + kImageShardHeaderBytes;
  labels_ = reinterpret_cast<const int32_t*>(file_.data() + labels_at);
}

}  // namespace herd::data
