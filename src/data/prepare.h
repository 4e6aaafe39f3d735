// `herd prepare text`: documents -> tokens (+EOS after each) -> train/val shards + manifest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/manifest.h"

namespace herd::data {

struct PrepareOptions {
  std::vector<std::string> inputs;
  std::string tokenizer;  // .model path
  std::string out_dir;
  double val_fraction = 0.05;
  uint64_t shard_tokens = 100000000;  // llm.c's shard size
  std::string doc_delimiter;
  std::string json_field = "text";
  uint64_t seed = 1337;
};

// Whether document `index` (0-based over all inputs, in order) goes to the validation split.
// A pure function of (index, seed, fraction), so a split is stable across runs and machines.
bool is_val_document(uint64_t index, uint64_t seed, double val_fraction);

// Deterministic: the same inputs, tokenizer and options give byte-identical outputs. Shards
// and then the manifest are written atomically; shards of an earlier run into the same
// directory that the new manifest does not list are removed.
DatasetManifest prepare_text(const PrepareOptions& options);

}  // namespace herd::data
