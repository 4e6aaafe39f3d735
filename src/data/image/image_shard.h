// Image shards (see data/formats/images.md): a header of 256 int32, then N images of
// H x W x C uint8 (row-major, channels last), zero padding to a multiple of 8 bytes, then N
// int32 labels. All little-endian.
//   header[0] magic 20251123, [1] version 1, [2] N, [3] H, [4] W, [5] C, [6..255] zero
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/mapped_file.h"
#include "data/staged_file.h"

namespace herd::data {

constexpr int32_t kImageShardMagic = 20251123;
constexpr int32_t kImageShardVersion = 1;
constexpr size_t kImageShardHeaderBytes = 256 * sizeof(int32_t);
constexpr uint64_t kImageShardMaxImages = 0x7fffffff;  // the count is an int32

struct ImageShape {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  uint64_t pixels() const { return static_cast<uint64_t>(height * width * channels); }
  bool operator==(const ImageShape& o) const {
    return height == o.height && width == o.width && channels == o.channels;
  }
};

// Byte offset of the label section in a shard of `n` images of `shape`.
uint64_t image_shard_labels_offset(uint64_t n, const ImageShape& shape);

// Streams images into `path` through a temporary file; finish() appends the labels, writes
// the header, fsyncs and renames. Destroyed without finish(), it removes the temporary.
class ImageShardWriter {
 public:
  ImageShardWriter(std::string path, ImageShape shape);

  // `pixels` holds shape.pixels() bytes (H x W x C); label >= 0.
  void append(const uint8_t* pixels, int32_t label);
  uint64_t images() const { return labels_.size(); }
  const std::string& path() const { return file_.path(); }
  void finish();

 private:
  StagedFile file_;
  ImageShape shape_;
  std::vector<int32_t> labels_;
};

// A validated, memory-mapped image shard. Move-only.
class ImageShardReader {
 public:
  // Checks magic, version, shape and that the file size matches the count exactly.
  explicit ImageShardReader(const std::string& path);
  ImageShardReader(ImageShardReader&& other) noexcept = default;
  ImageShardReader& operator=(ImageShardReader&& other) noexcept = default;

  uint64_t size() const { return count_; }
  const ImageShape& shape() const { return shape_; }
  const std::string& path() const { return path_; }
  // Image i's H x W x C bytes (i < size()).
  const uint8_t* image(uint64_t i) const { return pixels_ + i * shape_.pixels(); }
  int32_t label(uint64_t i) const { return labels_[i]; }

 private:
  std::string path_;
  MappedFile file_;
  const uint8_t* pixels_ = nullptr;
  const int32_t* labels_ = nullptr;
  uint64_t count_ = 0;
  ImageShape shape_;
};

}  // namespace herd::data
