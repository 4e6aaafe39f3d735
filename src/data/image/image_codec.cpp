#include "data/image/image_codec.h"

// jpeglib.h needs FILE and size_t declared first.
#include <cstddef>
#include <cstdio>
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>

#include "core/error.h"

namespace herd::data {
namespace {

// Larger decoded images are refused rather than risking memory (8192 x 16384).
constexpr uint64_t kMaxPixels = uint64_t(1) << 27;

struct JpegError {
  jpeg_error_mgr mgr;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings that mean the pixels are not the file's (libjpeg pads a truncated or damaged scan
// with grey and carries on); benign ones (extraneous bytes, unknown JFIF revision, a bad ICC
// marker) are ignored as other decoders do.
bool damages_pixels(int code) {
  switch (code) {
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_JPEG_EOF:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
#ifdef D_ARITH_CODING_SUPPORTED
    case JWRN_ARITH_BAD_CODE:
#endif
      return true;
    default:
      return false;
  }
}

void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && damages_pixels(cinfo->err->msg_code)) jpeg_fail(cinfo);
}

void jpeg_silent(j_common_ptr) {}

bool decode_jpeg(const std::string& bytes, int64_t min_side, Image* out, std::string* error) {
  // Everything with a destructor lives outside the setjmp scope (longjmp skips destructors).
  std::vector<uint8_t> cmyk_row;
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  err.mgr.output_message = jpeg_silent;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    *error = str("JPEG: ", err.message);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    jpeg_destroy_decompress(&cinfo);
    *error = "JPEG: no image in the stream (tables only)";
    return false;
  }
  // The decoder's buffers follow the stored size, whatever the output scale.
  if (uint64_t(cinfo.image_width) * cinfo.image_height > 4 * kMaxPixels) {
    *error = str("JPEG: ", cinfo.image_width, "x", cinfo.image_height,
                 " pixels is larger than the limit of ", 4 * kMaxPixels);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE
                          : cmyk                                  ? JCS_CMYK
                                                                  : JCS_RGB;
  if (min_side > 0) {
    const uint64_t shorter = std::min(cinfo.image_width, cinfo.image_height);
    unsigned denom = 1;
    // libjpeg rounds scaled sides up: ceil(side / denom).
    while (denom < 8 && (shorter + 2 * denom - 1) / (2 * denom) >= uint64_t(min_side)) denom *= 2;
    cinfo.scale_num = 1;
    cinfo.scale_denom = denom;
  }
  jpeg_calc_output_dimensions(&cinfo);
  const uint64_t w = cinfo.output_width, h = cinfo.output_height;
  if (w * h > kMaxPixels) {
    jpeg_destroy_decompress(&cinfo);
    *error = str("JPEG: ", w, "x", h, " pixels is larger than the limit of ", kMaxPixels);
    return false;
  }
  jpeg_start_decompress(&cinfo);
  const int64_t channels = cmyk ? 3 : cinfo.output_components;
  out->height = static_cast<int64_t>(h);
  out->width = static_cast<int64_t>(w);
  out->channels = channels;
  out->pixels.resize(h * w * static_cast<uint64_t>(channels));
  if (cmyk) cmyk_row.resize(w * 4);
  while (cinfo.output_scanline < h) {
    uint8_t* dst = out->pixels.data() + uint64_t(cinfo.output_scanline) * w * channels;
    JSAMPROW row = cmyk ? cmyk_row.data() : dst;
    jpeg_read_scanlines(&cinfo, &row, 1);
    if (!cmyk) continue;
    // CMYK JPEGs (Adobe) store inverted inks: value = 255 - ink, so R = C * K / 255.
    for (uint64_t x = 0; x < w; ++x) {
      const uint8_t* p = cmyk_row.data() + 4 * x;
      for (int c = 0; c < 3; ++c) dst[3 * x + c] = static_cast<uint8_t>((p[c] * p[3] + 127) / 255);
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

bool decode_png(const std::string& bytes, Image* out, std::string* error) {
  // libpng's simplified API catches its own longjmps and reports through image.message.
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    *error = str("PNG: ", image.message);
    png_image_free(&image);
    return false;
  }
  const bool color = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  image.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (uint64_t(image.width) * image.height > kMaxPixels) {
    *error = str("PNG: ", image.width, "x", image.height, " pixels is larger than the limit of ",
                 kMaxPixels);
    png_image_free(&image);
    return false;
  }
  out->height = image.height;
  out->width = image.width;
  out->channels = color ? 3 : 1;
  out->pixels.assign(PNG_IMAGE_SIZE(image), 0);
  const png_color black = {0, 0, 0};
  if (!png_image_finish_read(&image, &black, out->pixels.data(), 0, nullptr)) {
    *error = str("PNG: ", image.message);
    png_image_free(&image);
    return false;
  }
  return true;
}

// Taps of a 1-D resampling: output i reads src[index[i*taps + t]] * weight[i*taps + t].
struct Taps {
  int64_t taps = 0;
  std::vector<int64_t> index;
  std::vector<float> weight;
};

Taps make_taps(int64_t src_size, double start, double length, int64_t out_size) {
  const double scale = length / static_cast<double>(out_size);  // source pixels per output
  const double support = std::max(scale, 1.0);                  // triangle radius
  Taps t;
  t.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.index.assign(static_cast<size_t>(out_size * t.taps), 0);
  t.weight.assign(static_cast<size_t>(out_size * t.taps), 0.0f);
  std::vector<double> w(static_cast<size_t>(t.taps));
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = start + (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = static_cast<int64_t>(std::floor(center - support));
    double total = 0;
    for (int64_t k = 0; k < t.taps; ++k) {
      const double d = std::fabs(static_cast<double>(lo + k) + 0.5 - center) / support;
      w[k] = std::max(0.0, 1.0 - d);
      total += w[k];
    }
    for (int64_t k = 0; k < t.taps; ++k) {
      t.index[i * t.taps + k] = std::clamp<int64_t>(lo + k, 0, src_size - 1);
      t.weight[i * t.taps + k] = static_cast<float>(w[k] / total);
    }
  }
  return t;
}

}  // namespace

ImageFormat sniff_image_format(const std::string& bytes) {
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
      static_cast<uint8_t>(bytes[1]) == 0xD8 && static_cast<uint8_t>(bytes[2]) == 0xFF)
    return ImageFormat::jpeg;
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0)
    return ImageFormat::png;
  return ImageFormat::unknown;
}

bool decode_image(const std::string& bytes, int64_t min_side, Image* out, std::string* error) {
  switch (sniff_image_format(bytes)) {
    case ImageFormat::jpeg:
      return decode_jpeg(bytes, min_side, out, error);
    case ImageFormat::png:
      return decode_png(bytes, out, error);
    default:
      *error = bytes.empty() ? "empty file" : "not a JPEG or PNG file (unknown magic bytes)";
      return false;
  }
}

void convert_channels(Image* image, int64_t channels) {
  if (image->channels == channels) return;
  const size_t n = static_cast<size_t>(image->height * image->width);
  std::vector<uint8_t> out(n * static_cast<size_t>(channels));
  const uint8_t* in = image->pixels.data();
  if (image->channels == 1 && channels == 3) {
    for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = in[i];
  } else if (image->channels == 3 && channels == 1) {
    // Integer BT.601 weights (sum 1000) so the result does not depend on float rounding.
    for (size_t i = 0; i < n; ++i)
      out[i] = static_cast<uint8_t>(
          (299 * in[3 * i] + 587 * in[3 * i + 1] + 114 * in[3 * i + 2] + 500) / 1000);
  } else {
    throw Error(str("cannot convert ", image->channels, " channels to ", channels));
  }
  image->pixels = std::move(out);
  image->channels = channels;
}

void resample_box(const uint8_t* src, int64_t height, int64_t width, int64_t channels, double x0,
                  double y0, double box_w, double box_h, int64_t out_w, int64_t out_h, float* out) {
  const Taps tx = make_taps(width, x0, box_w, out_w);
  const Taps ty = make_taps(height, y0, box_h, out_h);
  // The source rows the vertical taps touch, filtered horizontally once each.
  const int64_t r0 = *std::min_element(ty.index.begin(), ty.index.end());
  const int64_t r1 = *std::max_element(ty.index.begin(), ty.index.end());
  const int64_t C = channels, row_len = out_w * C;
  std::vector<float> rows(static_cast<size_t>((r1 - r0 + 1) * row_len), 0.0f);
  for (int64_t r = r0; r <= r1; ++r) {
    const uint8_t* s = src + r * width * C;
    float* d = rows.data() + (r - r0) * row_len;
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t* idx = tx.index.data() + x * tx.taps;
      const float* w = tx.weight.data() + x * tx.taps;
      for (int64_t c = 0; c < C; ++c) {
        float acc = 0;
        for (int64_t k = 0; k < tx.taps; ++k) acc += w[k] * s[idx[k] * C + c];
        d[x * C + c] = acc;
      }
    }
  }
  for (int64_t y = 0; y < out_h; ++y) {
    float* d = out + y * row_len;
    std::fill(d, d + row_len, 0.0f);
    for (int64_t k = 0; k < ty.taps; ++k) {
      const float w = ty.weight[y * ty.taps + k];
      if (w == 0.0f) continue;
      const float* s = rows.data() + (ty.index[y * ty.taps + k] - r0) * row_len;
      for (int64_t i = 0; i < row_len; ++i) d[i] += w * s[i];
    }
  }
}

Image resize_center_crop(const Image& src, int64_t size) {
  const int64_t shorter = std::min(src.height, src.width);
  std::vector<float> buf(static_cast<size_t>(size * size * src.channels));
  resample_box(src.pixels.data(), src.height, src.width, src.channels,
               0.5 * static_cast<double>(src.width - shorter),
               0.5 * static_cast<double>(src.height - shorter), static_cast<double>(shorter),
               static_cast<double>(shorter), size, size, buf.data());
  Image out;
  out.height = out.width = size;
  out.channels = src.channels;
  out.pixels.resize(buf.size());
  for (size_t i = 0; i < buf.size(); ++i)
    out.pixels[i] = static_cast<uint8_t>(std::clamp(buf[i], 0.0f, 255.0f) + 0.5f);
  return out;
}

}  // namespace herd::data
