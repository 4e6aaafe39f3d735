// `herd prepare text`: documents -> tokens (+EOS after each) -> train/val shards + manifest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/text/manifest.h"

namespace herd::data {

struct PrepareOptions {
  // Files, directories and globs (see expand_inputs in data/input_files.h).
  std::vector<std::string> inputs;
  std::string tokenizer;  // .model path
  std::string out_dir;
  double val_fraction = 0.05;
  uint64_t shard_tokens = 100000000;  // llm.c's shard size
  std::string doc_delimiter;
  std::string json_field = "text";
  uint64_t seed = 1337;
  // Tokenizer threads; 0: std::thread::hardware_concurrency(). The output does not depend on it.
  int64_t threads = 0;
  // Count and skip JSON lines that do not parse or lack json_field (else: an error).
  bool skip_bad_lines = false;
};

// Counts of one run beyond what the manifest records.
struct PrepareReport {
  uint64_t documents = 0;
  uint64_t tokens = 0;
  uint64_t bytes = 0;  // uncompressed input bytes read
  uint64_t skipped_lines = 0;
  int64_t threads = 0;
  double seconds = 0;
};

// Whether document `index` (0-based over all inputs, in order) goes to the validation split.
// A pure function of (index, seed, fraction), so a split is stable across runs and machines.
bool is_val_document(uint64_t index, uint64_t seed, double val_fraction);

// Deterministic: the same inputs, tokenizer and options give byte-identical outputs. Shards
// and then the manifest are written atomically; shards of an earlier run into the same
// directory that the new manifest does not list are removed.
// Documents are read in order on the calling thread, tokenized in chunks by `threads` workers
// and written in the original order, so the bytes do not depend on the thread count.
DatasetManifest prepare_text(const PrepareOptions& options, PrepareReport* report = nullptr);

}  // namespace herd::data
