// IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain: a big-endian header
// {0, 0, type 0x08 = unsigned byte, number of dimensions} then the sizes (uint32 each), then
// the bytes. Images have 3 dimensions (count, rows, cols), labels 1 (count).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace herd::data {

struct IdxImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
};

// Throw herd::Error naming the file and the expected form when it is missing, not IDX, of the
// wrong kind, or truncated.
IdxImages read_idx_images(const std::string& path);
std::vector<uint8_t> read_idx_labels(const std::string& path);

}  // namespace herd::data
