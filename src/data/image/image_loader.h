// Train and eval loaders over a prepared image dataset (its manifest + memory-mapped shards).
//
// Train: each epoch visits every image once in epoch_permutation(n, seed, epoch) order (the
// same order function as the token loader). The position is global, so every rank advances by
// the whole global batch and takes its own rows. Augmentation (random resized crop, horizontal
// flip) draws from a generator seeded by (seed, epoch, image index) only: a resumed run, a
// different batch size or a different number of ranks sees identical pixels for the same image
// in the same epoch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/epoch_order.h"
#include "data/image/image_manifest.h"
#include "data/image/image_shard.h"
#include "data/text/loader.h"

namespace herd::data {

struct ImageAugment {
  // Crop a box of a random share of the area in [min_scale, max_scale] and aspect ratio
  // (width / height) log-uniform in [min_ratio, max_ratio], resized (bilinear) back to the
  // stored size; after 10 boxes that do not fit, the whole image clamped to the ratio range.
  bool random_resized_crop = true;
  double min_scale = 0.35, max_scale = 1.0;
  double min_ratio = 3.0 / 4, max_ratio = 4.0 / 3;
  bool hflip = true;  // mirror left-right with probability 1/2

  static ImageAugment none() { return ImageAugment{false, 1.0, 1.0, 1.0, 1.0, false}; }
  // Throws herd::Error naming the field when a range is empty or out of (0, 1] / (0, inf).
  void validate() const;
};

struct ImageBatch {
  torch::Tensor images;  // float32 [B, C, H, W]: (pixel / 255 - mean[c]) / std[c]
  torch::Tensor labels;  // int64 [B]
};

// One split's shards as a single indexable sequence of images (memory-mapped).
class ImageSource {
 public:
  // Checks each shard's count and shape against the manifest and every label < num_classes.
  ImageSource(const ImageManifest& m, const std::string& split);
  uint64_t size() const { return total_; }
  const ImageShape& shape() const { return shape_; }
  const uint8_t* image(uint64_t i) const;
  int32_t label(uint64_t i) const;

 private:
  size_t shard_of(uint64_t i) const;

  std::vector<ImageShardReader> shards_;
  std::vector<uint64_t> starts_;  // first global index of each shard
  uint64_t total_ = 0;
  ImageShape shape_;
};

// The crop box and flip drawn for image `sample` in `epoch` (what the train loader applies).
struct ImageView {
  double x0 = 0, y0 = 0, width = 0, height = 0;  // in source pixels
  bool flip = false;
};
ImageView draw_image_view(const ImageAugment& augment, const ImageShape& shape, uint64_t seed,
                          uint64_t epoch, uint64_t sample);

class ImageTrainLoader {
 public:
  ImageTrainLoader(const ImageManifest& manifest, ImageAugment augment, uint64_t seed);

  // Rank `rank`'s rows [rank*B/world, (rank+1)*B/world) of the next global batch of
  // `global_batch` images (which must divide by world); advances the position by
  // global_batch on every rank, rolling into the next epoch as needed.
  ImageBatch next_batch(int64_t global_batch, int64_t rank = 0, int64_t world = 1);

  LoaderState state() const { return order_.state(); }
  // Throws when the state does not fit this dataset (next_sample >= num_samples).
  void restore(const LoaderState& state) { order_.restore(state, "image loader"); }
  uint64_t num_samples() const { return source_.size(); }
  const ImageShape& shape() const { return source_.shape(); }

 private:
  ImageSource source_;
  ImageAugment augment_;
  std::vector<float> scale_, shift_;  // per channel: out = pixel * scale + shift
  EpochOrder order_;
};

// Images of one split in stored order, unaugmented. The last batch may be short.
class ImageEvalLoader {
 public:
  explicit ImageEvalLoader(const ImageManifest& manifest, const std::string& split = "val");

  // std::nullopt once every image was returned; then reset() starts over. With world > 1,
  // rank r gets rows [r*n/world, (r+1)*n/world) of the n images of this global batch.
  std::optional<ImageBatch> next_batch(int64_t global_batch, int64_t rank = 0, int64_t world = 1);
  void reset() { next_ = 0; }
  // The next batch starts at sample `sample` (evaluation shared out by batch across ranks).
  void seek(uint64_t sample) { next_ = sample; }
  uint64_t num_samples() const { return source_.size(); }
  uint64_t position() const { return next_; }

 private:
  ImageSource source_;
  std::vector<float> scale_, shift_;
  uint64_t next_ = 0;
};

}  // namespace herd::data
