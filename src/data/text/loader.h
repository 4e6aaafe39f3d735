// Training and validation loaders over a prepared dataset directory (its manifest + shards).
//
// The train split is one stream of N tokens (shards concatenated in manifest order), cut into
// samples of seq_len + 1 tokens at stride seq_len: sample i covers [i*T, i*T + T], giving
// input = tokens [i*T, i*T+T) and target = tokens [i*T+1, i*T+T]. Each epoch visits every
// sample once in an order fixed by (seed, epoch) (data/epoch_order.h). The position is global
// (not per rank), so every rank advances identically and takes its own slice of each batch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/epoch_order.h"
#include "data/text/manifest.h"
#include "data/text/shard.h"

namespace herd::data {

struct Batch {
  torch::Tensor input;   // [B, T] int64
  torch::Tensor target;  // [B, T] int64
};

// One split's shards as a single token stream (memory-mapped).
class TokenStream {
 public:
  // Checks each shard's count and dtype against the manifest.
  TokenStream(const DatasetManifest& m, const std::vector<ShardEntry>& shards);
  uint64_t size() const { return total_; }
  // Tokens [begin, begin + n) as int64; checks each id < vocab_size.
  void copy(uint64_t begin, uint64_t n, int64_t* out) const;

 private:
  std::vector<ShardReader> shards_;
  std::vector<uint64_t> starts_;  // first global index of each shard
  uint64_t total_ = 0;
  int64_t vocab_size_ = 0;
};

// The number of samples of seq_len + 1 tokens at stride seq_len in `tokens` tokens.
uint64_t count_samples(uint64_t tokens, int64_t seq_len);

class TrainLoader {
 public:
  TrainLoader(const DatasetManifest& manifest, int64_t seq_len, uint64_t seed);

  // Rank `rank`'s rows [rank*B/world, (rank+1)*B/world) of the next global batch of
  // `global_batch` samples (which must divide by world); advances the position by
  // global_batch samples on every rank, rolling into the next epoch as needed.
  Batch next_batch(int64_t global_batch, int64_t rank = 0, int64_t world = 1);

  // The building blocks of next_batch, for loaders that draw from several datasets: the
  // sample `offset` places past the current position (into later epochs as needed) as
  // seq_len + 1 tokens into `row`, leaving the position; and moving the position `count` on.
  void read_ahead(uint64_t offset, int64_t* row);
  void advance(uint64_t count);

  LoaderState state() const { return order_.state(); }
  // Throws when the state does not fit this dataset (next_sample >= num_samples).
  void restore(const LoaderState& state) { order_.restore(state, "loader"); }

  uint64_t num_samples() const { return num_samples_; }
  int64_t seq_len() const { return seq_len_; }
  uint64_t num_tokens() const { return stream_.size(); }

 private:
  void fill_row(uint64_t sample, int64_t* row) const;

  TokenStream stream_;
  int64_t seq_len_;
  uint64_t num_samples_;
  EpochOrder order_;
};

// Validation samples in stream order (no shuffle). The last batch may be short.
class ValLoader {
 public:
  ValLoader(const DatasetManifest& manifest, int64_t seq_len);

  // std::nullopt once every sample was returned; then reset() starts over. With world > 1,
  // rank r gets rows [r*n/world, (r+1)*n/world) of the n samples of this global batch.
  std::optional<Batch> next_batch(int64_t global_batch, int64_t rank = 0, int64_t world = 1);
  void reset() { next_ = 0; }
  // The next batch starts at sample `sample` (evaluation shared out by batch across ranks).
  void seek(uint64_t sample) { next_ = sample; }

  uint64_t num_samples() const { return num_samples_; }
  uint64_t position() const { return next_; }

 private:
  TokenStream stream_;
  int64_t seq_len_;
  uint64_t num_samples_;
  uint64_t next_ = 0;
};

}  // namespace herd::data
