// `herd prepare images`: IDX files or ImageNet-style folders -> uint8 image shards + manifest
// (data/formats/images.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image/image_manifest.h"

namespace herd::data {

struct PrepareImagesOptions {
  // IDX input (MNIST / Fashion-MNIST); the test pair is optional and becomes the "val" split.
  std::string idx_train_images, idx_train_labels, idx_test_images, idx_test_labels;
  // Folder input: FOLDER/train/<class>/*.{jpg,jpeg,png}, FOLDER/val/<class>/... (optional).
  std::string folder;
  // IDX only: comma-separated names for labels 0, 1, ..., or "fashion-mnist".
  // Empty: "0", "1", ... up to the largest label. Folders name classes by their directories.
  std::string class_names;
  int64_t size = 0;      // square side; 0 keeps IDX images at their own size (folders need > 0)
  int64_t channels = 0;  // 1 or 3; 0: 1 for IDX, 3 for folders
  uint64_t shard_images = 10000;
  std::string out_dir;
  int64_t max_warnings = 20;  // skipped files listed one per line, then only counted
};

// Fashion-MNIST's ten class names, for label ids 0..9.
const std::vector<std::string>& fashion_mnist_class_names();

// Deterministic: the same inputs and options give byte-identical shards and manifest. Files
// that cannot be decoded are reported (one warning each, up to max_warnings), counted in the
// manifest and skipped; a missing or invalid IDX file or folder layout throws herd::Error.
// Shards and then the manifest are written atomically; shards of an earlier run into the same
// directory that the new manifest does not list are removed.
ImageManifest prepare_images(const PrepareImagesOptions& options);

}  // namespace herd::data
