#include "data/image/image_loader.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/hash.h"
#include "data/image/image_codec.h"

namespace herd::data {
namespace {

// Uniform in [0, 1) from 53 random bits.
double uniform(SplitMix64& rng) {
  return static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
}

void normalizer(const ImageManifest& m, std::vector<float>* scale, std::vector<float>* shift) {
  for (int64_t c = 0; c < m.shape.channels; ++c) {
    scale->push_back(static_cast<float>(1.0 / (255.0 * m.std[size_t(c)])));
    shift->push_back(static_cast<float>(-m.mean[size_t(c)] / m.std[size_t(c)]));
  }
}

// Writes one stored image (H x W x C bytes) as normalized float [C, H, W].
void copy_plain(const uint8_t* src, const ImageShape& s, const float* scale, const float* shift,
                float* out) {
  const int64_t plane = s.height * s.width;
  for (int64_t c = 0; c < s.channels; ++c)
    for (int64_t i = 0; i < plane; ++i)
      out[c * plane + i] = static_cast<float>(src[i * s.channels + c]) * scale[c] + shift[c];
}

// The view's box resampled to the stored size, mirrored when asked, normalized to [C, H, W].
void render_view(const uint8_t* src, const ImageShape& s, const ImageView& v, const float* scale,
                 const float* shift, std::vector<float>* scratch, float* out) {
  const int64_t H = s.height, W = s.width, C = s.channels, plane = H * W;
  scratch->resize(static_cast<size_t>(plane * C));
  resample_box(src, H, W, C, v.x0, v.y0, v.width, v.height, W, H, scratch->data());
  const float* r = scratch->data();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = v.flip ? W - 1 - x : x;
        out[c * plane + y * W + x] = r[(y * W + sx) * C + c] * scale[c] + shift[c];
      }
}

}  // namespace

void ImageAugment::validate() const {
  HERD_CHECK(min_scale > 0 && min_scale <= max_scale && max_scale <= 1, "image augment: scale [",
             min_scale, ", ", max_scale, "] (expected 0 < min_scale <= max_scale <= 1)");
  HERD_CHECK(min_ratio > 0 && min_ratio <= max_ratio && std::isfinite(max_ratio),
             "image augment: ratio [", min_ratio, ", ", max_ratio,
             "] (expected 0 < min_ratio <= max_ratio)");
}

ImageSource::ImageSource(const ImageManifest& m, const std::string& split) : shape_(m.shape) {
  for (const auto& entry : m.split(split).shards) {
    ImageShardReader reader(m.shard_path(entry));
    HERD_CHECK(reader.size() == entry.images, "image shard ", entry.file, ": ", reader.size(),
               " images but ", m.manifest_path(), " lists ", entry.images);
    HERD_CHECK(reader.shape() == m.shape, "image shard ", entry.file, ": images of ",
               reader.shape().height, "x", reader.shape().width, "x", reader.shape().channels,
               " but ", m.manifest_path(), " says ", m.shape.height, "x", m.shape.width, "x",
               m.shape.channels);
    for (uint64_t i = 0; i < reader.size(); ++i)
      HERD_CHECK(reader.label(i) >= 0 && reader.label(i) < m.num_classes(), "image shard ",
                 entry.file, ": label ", reader.label(i), " of image ", i,
                 " (expected 0..num_classes-1 = ", m.num_classes() - 1, ")");
    starts_.push_back(total_);
    total_ += reader.size();
    shards_.push_back(std::move(reader));
  }
}

size_t ImageSource::shard_of(uint64_t i) const {
  HERD_CHECK(i < total_, "image source: image ", i, " past its ", total_, " images");
  return static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), i) -
                             starts_.begin()) -
         1;
}

const uint8_t* ImageSource::image(uint64_t i) const {
  size_t s = shard_of(i);
  return shards_[s].image(i - starts_[s]);
}

int32_t ImageSource::label(uint64_t i) const {
  size_t s = shard_of(i);
  return shards_[s].label(i - starts_[s]);
}

ImageView draw_image_view(const ImageAugment& a, const ImageShape& shape, uint64_t seed,
                          uint64_t epoch, uint64_t sample) {
  SplitMix64 rng(mix64(mix64(mix64(seed ^ 0x8c5b2e4ad1f03c77ULL) ^ epoch) ^ sample));
  const double H = static_cast<double>(shape.height), W = static_cast<double>(shape.width);
  ImageView v{0, 0, W, H, false};
  if (a.random_resized_crop) {
    bool found = false;
    const double log_lo = std::log(a.min_ratio), log_hi = std::log(a.max_ratio);
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
      const double area = H * W * (a.min_scale + (a.max_scale - a.min_scale) * uniform(rng));
      const double ratio = std::exp(log_lo + (log_hi - log_lo) * uniform(rng));
      const double w = std::sqrt(area * ratio), h = std::sqrt(area / ratio);
      if (w > W || h > H) continue;
      v = ImageView{(W - w) * uniform(rng), (H - h) * uniform(rng), w, h, false};
      found = true;
    }
    if (!found) {  // the whole image, cut to the nearest allowed aspect ratio
      double w = W, h = H;
      if (W / H < a.min_ratio) h = W / a.min_ratio;
      if (W / H > a.max_ratio) w = H * a.max_ratio;
      v = ImageView{(W - w) / 2, (H - h) / 2, w, h, false};
    }
  }
  v.flip = a.hflip && uniform(rng) < 0.5;
  return v;
}

ImageTrainLoader::ImageTrainLoader(const ImageManifest& manifest, ImageAugment augment,
                                   uint64_t seed)
    : source_(manifest, "train"), augment_(augment) {
  augment_.validate();
  HERD_CHECK(source_.size() > 0, manifest.manifest_path(), ": the train split has no images");
  normalizer(manifest, &scale_, &shift_);
  order_ = EpochOrder(source_.size(), seed);
}

ImageBatch ImageTrainLoader::next_batch(int64_t global_batch, int64_t rank, int64_t world) {
  check_even_slice(global_batch, rank, world);
  const uint64_t B = static_cast<uint64_t>(global_batch);
  const RankRows mine = rank_rows(B, rank, world);
  const int64_t rows = static_cast<int64_t>(mine.size());
  // Which image each row shows, and in which epoch (a batch may straddle two).
  std::vector<uint64_t> samples(rows), epochs(rows);
  for (uint64_t j = mine.begin; j < mine.end; ++j)
    samples[j - mine.begin] = order_.sample_at(j, &epochs[j - mine.begin]);
  const ImageShape& s = source_.shape();
  auto images = torch::empty({rows, s.channels, s.height, s.width}, torch::kFloat32);
  auto labels = torch::empty({rows}, torch::kInt64);
  float* out = images.data_ptr<float>();
  int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t per_image = static_cast<int64_t>(s.pixels());
  const bool plain = !augment_.random_resized_crop && !augment_.hflip;
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    for (int64_t r = begin; r < end; ++r) {
      const uint8_t* src = source_.image(samples[r]);
      lab[r] = source_.label(samples[r]);
      if (plain) {
        copy_plain(src, s, scale_.data(), shift_.data(), out + r * per_image);
      } else {
        const ImageView v =
            draw_image_view(augment_, s, order_.state().seed, epochs[r], samples[r]);
        render_view(src, s, v, scale_.data(), shift_.data(), &scratch, out + r * per_image);
      }
    }
  });
  order_.advance(B);
  return ImageBatch{images, labels};
}

ImageEvalLoader::ImageEvalLoader(const ImageManifest& manifest, const std::string& split)
    : source_(manifest, split) {
  normalizer(manifest, &scale_, &shift_);
}

std::optional<ImageBatch> ImageEvalLoader::next_batch(int64_t global_batch, int64_t rank,
                                                      int64_t world) {
  check_slice(global_batch, rank, world);
  if (next_ >= source_.size()) return std::nullopt;
  const uint64_t n =
      std::min<uint64_t>(static_cast<uint64_t>(global_batch), source_.size() - next_);
  const RankRows mine = rank_rows(n, rank, world);
  const int64_t rows = static_cast<int64_t>(mine.size());
  const ImageShape& s = source_.shape();
  auto images = torch::empty({rows, s.channels, s.height, s.width}, torch::kFloat32);
  auto labels = torch::empty({rows}, torch::kInt64);
  float* out = images.data_ptr<float>();
  int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t per_image = static_cast<int64_t>(s.pixels());
  const uint64_t first = next_ + mine.begin;
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      copy_plain(source_.image(first + r), s, scale_.data(), shift_.data(), out + r * per_image);
      lab[r] = source_.label(first + r);
    }
  });
  next_ += n;
  return ImageBatch{images, labels};
}

}  // namespace herd::data
