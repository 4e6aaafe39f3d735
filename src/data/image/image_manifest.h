// Image dataset manifest: DIR/manifest.yaml written by `herd prepare images`
// (data/formats/images.md). Loaders read the image shape, classes, normalization and shards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image/image_shard.h"

namespace herd::data {

constexpr const char* kImageManifestFormat = "herd-images";
constexpr int64_t kImageManifestVersion = 1;

struct ImageShardEntry {
  std::string file;  // name inside the dataset directory
  uint64_t images = 0;
};

// One split ("train" or "val"): its shards, per-class image counts and skipped inputs.
struct ImageSplit {
  std::vector<ImageShardEntry> shards;
  std::vector<uint64_t> class_counts;  // [num_classes]
  uint64_t skipped = 0;                // inputs that could not be decoded

  uint64_t images() const;
};

struct ImageManifest {
  std::string dir;  // where it was loaded from / written to (not stored in the file)
  ImageShape shape;
  std::vector<std::string> class_names;  // label i is class_names[i]
  // Per channel, over every train pixel, in units of pixel / 255: loaders feed the model
  // (pixel / 255 - mean[c]) / std[c].
  std::vector<double> mean;
  std::vector<double> std;
  std::string source_kind;          // "idx" | "folder"
  std::vector<std::string> inputs;  // as given to prepare
  int64_t size = 0;                 // --size (0: native)
  ImageSplit train;
  ImageSplit val;

  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  std::string manifest_path() const;  // dir/manifest.yaml
  std::string shard_path(const ImageShardEntry& e) const;
  // "train" | "val"; throws naming the accepted names otherwise.
  const ImageSplit& split(const std::string& name) const;
};

// Reads and validates dir/manifest.yaml; errors are one line naming the file and key.
ImageManifest load_image_manifest(const std::string& dir);
// The YAML text (deterministic: same manifest, same bytes).
std::string image_manifest_to_yaml(const ImageManifest& manifest);
// Writes manifest.dir/manifest.yaml atomically.
void save_image_manifest(const ImageManifest& manifest);

}  // namespace herd::data
