// JPEG (libjpeg-turbo) and PNG (libpng) decoding from memory, plus the pixel operations
// `herd prepare images` and the image loaders share: channel conversion and a separable
// resampler (triangle filter widened when shrinking, so it averages areas; plain bilinear
// when enlarging).
//
// Decoders never throw and never abort the process: a corrupt, truncated or unsupported file
// comes back as false plus a one-line reason (libjpeg's and libpng's fatal errors are caught
// with setjmp/longjmp inside the decoder).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace herd::data {

// An 8-bit image, rows top to bottom, channels last (gray: 1, RGB: 3).
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

enum class ImageFormat { unknown, jpeg, png };

// By content (magic bytes), not by file name.
ImageFormat sniff_image_format(const std::string& bytes);

// Decodes to gray or RGB as stored (CMYK JPEGs are converted to RGB; PNG palettes expanded,
// 16-bit reduced to 8, alpha composited onto black). With min_side > 0, a large JPEG is
// decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose shorter side stays >= min_side:
// the resize that follows sees fewer pixels, and the result is the same area-average in spirit.
bool decode_image(const std::string& bytes, int64_t min_side, Image* out, std::string* error);

// Gray -> RGB repeats the value; RGB -> gray uses ITU-R BT.601 luma (0.299, 0.587, 0.114).
void convert_channels(Image* image, int64_t channels);

// Resamples the box [x0, x0 + box_w) x [y0, y0 + box_h) of `src` (in pixel units, edges at
// integers) to out_w x out_h, writing out_h * out_w * channels floats (same channel-last
// layout, values on the 0..255 scale). A box of exactly the source size and out = source size
// copies pixels exactly. Samples outside the image repeat the edge.
void resample_box(const uint8_t* src, int64_t height, int64_t width, int64_t channels, double x0,
                  double y0, double box_w, double box_h, int64_t out_w, int64_t out_h, float* out);

// Scales the shorter side to `size` and takes the centre size x size square, rounded to uint8.
Image resize_center_crop(const Image& src, int64_t size);

}  // namespace herd::data
