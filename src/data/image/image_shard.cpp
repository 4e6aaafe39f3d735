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

constexpr int64_t kMaxSide = 1 << 16;

}  // namespace

uint64_t image_shard_labels_offset(uint64_t n, const ImageShape& shape) {
  uint64_t end = kImageShardHeaderBytes + n * shape.pixels();
  return (end + 7) / 8 * 8;
}

// The writer's path once its shape is known to be storable (checked before anything is created).
static const std::string& checked_shape(const std::string& path, const ImageShape& shape) {
  HERD_CHECK(shape.height > 0 && shape.width > 0 && shape.height <= kMaxSide &&
                 shape.width <= kMaxSide && (shape.channels == 1 || shape.channels == 3),
             path, ": image shape ", shape.height, "x", shape.width, "x", shape.channels,
             " (expected sides 1..", kMaxSide, " and 1 or 3 channels)");
  return path;
}

ImageShardWriter::ImageShardWriter(std::string path, ImageShape shape)
    : file_(checked_shape(path, shape), kImageShardHeaderBytes, 1 << 22), shape_(shape) {}

void ImageShardWriter::append(const uint8_t* pixels, int32_t label) {
  const std::string& path = file_.path();
  HERD_CHECK(file_.writable(), path, ": append after finish or failure");
  HERD_CHECK(labels_.size() < kImageShardMaxImages, path, ": more than ", kImageShardMaxImages,
             " images in one shard (use a smaller --shard-images)");
  HERD_CHECK(label >= 0, path, ": negative label ", label);
  file_.append(pixels, shape_.pixels());
  labels_.push_back(label);
}

void ImageShardWriter::finish() {
  HERD_CHECK(file_.writable(), file_.path(), ": finish after finish or failure");
  const uint64_t n = labels_.size();
  const uint64_t pad =
      image_shard_labels_offset(n, shape_) - kImageShardHeaderBytes - n * shape_.pixels();
  const std::vector<char> zeros(pad, 0);
  file_.append(zeros.data(), zeros.size());
  file_.append(labels_.data(), n * sizeof(int32_t));
  int32_t header[256] = {};
  header[0] = kImageShardMagic;
  header[1] = kImageShardVersion;
  header[2] = static_cast<int32_t>(n);
  header[3] = static_cast<int32_t>(shape_.height);
  header[4] = static_cast<int32_t>(shape_.width);
  header[5] = static_cast<int32_t>(shape_.channels);
  file_.commit(header, sizeof(header));
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
