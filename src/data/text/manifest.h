// dataset manifest: DIR/manifest.yaml written by `herd prepare text` (data/formats/manifest.md).
// Training reads vocab_size, eos_id, the tokenizer and the shard list from it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/text/shard.h"

namespace herd::data {

constexpr const char* kManifestFormat = "herd-dataset";
constexpr int64_t kManifestVersion = 1;
constexpr const char* kManifestFile = "manifest.yaml";

struct ShardEntry {
  std::string file;  // name inside the dataset directory
  uint64_t tokens = 0;
};

struct DatasetManifest {
  std::string dir;                 // where it was loaded from / written to (not stored in the file)
  std::string tokenizer_path;      // absolute
  std::string tokenizer_identity;  // Tokenizer::identity()
  int64_t vocab_size = 0;
  int64_t eos_id = -1;
  TokenDtype dtype = TokenDtype::u16;
  double val_fraction = 0;
  uint64_t seed = 0;
  std::vector<std::string> inputs;  // as given to prepare
  std::string doc_delimiter;
  uint64_t train_documents = 0;
  uint64_t val_documents = 0;
  std::vector<ShardEntry> train_shards;
  std::vector<ShardEntry> val_shards;

  uint64_t train_tokens() const;
  uint64_t val_tokens() const;
  std::string manifest_path() const;                  // dir/manifest.yaml
  std::string shard_path(const ShardEntry& e) const;  // dir/file
};

// Reads and validates dir/manifest.yaml; errors are one line naming the file (and line/key).
DatasetManifest load_manifest(const std::string& dir);
// dir/manifest.yaml when there is one, else the llm.c shards of the folder: every *train*.bin
// and *val*.bin in name order, each shard's token width from its header, no tokenizer,
// vocab_size 0 (the config names it) and an identity naming the shards and their sizes.
DatasetManifest load_dataset(const std::string& dir);
// Whether the manifest was made by load_dataset from a folder of llm.c shards.
bool is_llmc_folder(const DatasetManifest& manifest);
// The YAML text (deterministic: same manifest, same bytes).
std::string manifest_to_yaml(const DatasetManifest& manifest);
// Writes manifest.dir/manifest.yaml atomically.
void save_manifest(const DatasetManifest& manifest);

}  // namespace herd::data
