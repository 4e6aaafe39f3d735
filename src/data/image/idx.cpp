#include "data/image/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "data/file_util.h"

namespace herd::data {
namespace {

// gzread reads gzip streams and passes plain files through unchanged.
std::string read_maybe_gzip(const std::string& path, const char* expected) {
  HERD_CHECK(is_regular_file(path), path, ": cannot open IDX file (", std::strerror(ENOENT),
             "; expected ", expected, ")");
  gzFile f = gzopen(path.c_str(), "rb");
  HERD_CHECK(f != nullptr, path, ": cannot open IDX file (", std::strerror(errno), ")");
  std::string out;
  char buf[1 << 16];
  int got;
  while ((got = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(got));
  std::string why;
  if (got < 0) {
    int code = 0;
    why = gzerror(f, &code);
  }
  gzclose(f);
  HERD_CHECK(got == 0, path, ": corrupt gzip stream (", why, "; expected ", expected, ")");
  return out;
}

uint32_t big_endian_u32(const std::string& bytes, size_t at) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + at;
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Checks the header of an unsigned-byte IDX file with `dims` dimensions; returns the sizes.
std::vector<uint64_t> read_header(const std::string& path, const std::string& bytes, int dims,
                                  const char* expected) {
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  HERD_CHECK(bytes.size() >= header, path, ": ", bytes.size(),
             " bytes is too short for an IDX header (expected ", expected, ")");
  const uint32_t magic = big_endian_u32(bytes, 0);
  const uint32_t want = 0x0800u | static_cast<uint32_t>(dims);
  if (magic != want) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", magic);
    throw Error(str(path, ": IDX magic ", hex, " (expected 0x0000080", dims, ": ", expected, ")"));
  }
  std::vector<uint64_t> sizes;
  uint64_t total = 1;
  for (int d = 0; d < dims; ++d) {
    sizes.push_back(big_endian_u32(bytes, 4 + 4 * static_cast<size_t>(d)));
    total *= sizes.back();
  }
  HERD_CHECK(bytes.size() - header == total, path, ": ", bytes.size() - header,
             " data bytes but the IDX header promises ", total, " (",
             bytes.size() - header < total ? "truncated file" : "trailing bytes", ")");
  return sizes;
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  const char* expected = "IDX images, magic 0x00000803, such as train-images-idx3-ubyte.gz";
  const std::string bytes = read_maybe_gzip(path, expected);
  const auto sizes = read_header(path, bytes, 3, expected);
  HERD_CHECK(sizes[1] > 0 && sizes[2] > 0 && sizes[1] <= 65536 && sizes[2] <= 65536, path,
             ": images of ", sizes[1], "x", sizes[2], " (expected sides 1..65536)");
  IdxImages out;
  out.count = static_cast<int64_t>(sizes[0]);
  out.rows = static_cast<int64_t>(sizes[1]);
  out.cols = static_cast<int64_t>(sizes[2]);
  out.pixels.assign(bytes.begin() + 16, bytes.end());
  return out;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  const char* expected = "IDX labels, magic 0x00000801, such as train-labels-idx1-ubyte.gz";
  const std::string bytes = read_maybe_gzip(path, expected);
  read_header(path, bytes, 1, expected);
  return std::vector<uint8_t>(bytes.begin() + 8, bytes.end());
}

}  // namespace herd::data
