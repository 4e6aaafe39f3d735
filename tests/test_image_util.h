// Test fixtures for the image pipeline: JPEG/PNG/IDX files written with the same libraries
// herd reads them with, and small synthetic image datasets.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdio>
// clang-format off
#include <jpeglib.h>
// clang-format on
#include <png.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/image/image_codec.h"

namespace herd::data::testing_util {

// An image of one colour (channels = color.size(): 1 gray, 3 RGB, 4 CMYK ink values).
inline Image solid_image(int64_t height, int64_t width, const std::vector<uint8_t>& color) {
  Image im{height, width, static_cast<int64_t>(color.size()), {}};
  for (int64_t i = 0; i < height * width; ++i)
    im.pixels.insert(im.pixels.end(), color.begin(), color.end());
  return im;
}

// Pseudo-random pixels (they compress badly: a cut file loses image data, not just headers).
inline Image noise_image(int64_t height, int64_t width, int64_t channels, uint32_t seed) {
  Image im{height, width, channels, std::vector<uint8_t>(size_t(height * width * channels))};
  uint32_t x = seed * 2654435761u + 1;
  for (auto& p : im.pixels) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    p = static_cast<uint8_t>(x >> 24);
  }
  return im;
}

// channels 1 -> grayscale JPEG, 3 -> YCbCr, 4 -> Adobe CMYK (pixels are inverted inks).
inline void write_jpeg(const std::string& path, const Image& im, int quality = 95) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &mem, &size);
  cinfo.image_width = static_cast<JDIMENSION>(im.width);
  cinfo.image_height = static_cast<JDIMENSION>(im.height);
  cinfo.input_components = static_cast<int>(im.channels);
  cinfo.in_color_space = im.channels == 1 ? JCS_GRAYSCALE : im.channels == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(im.pixels.data() +
                                        size_t(cinfo.next_scanline) * im.width * im.channels);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  std::fwrite(mem, 1, size, f);
  std::fclose(f);
  std::free(mem);
}

// channels 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
inline void write_png(const std::string& path, const Image& im) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(im.width);
  image.height = static_cast<png_uint_32>(im.height);
  const png_uint_32 formats[] = {0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB,
                                 PNG_FORMAT_RGBA};
  image.format = formats[im.channels];
  if (!png_image_write_to_file(&image, path.c_str(), 0, im.pixels.data(), 0, nullptr))
    throw std::runtime_error("cannot write PNG " + path + ": " + image.message);
}

// A gzip-compressed (or plain) IDX file of unsigned bytes with the given dimensions.
inline void write_idx(const std::string& path, const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& data, bool gzip = true) {
  std::string bytes = {0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(d >> shift));
  bytes.append(data.begin(), data.end());
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

}  // namespace herd::data::testing_util
