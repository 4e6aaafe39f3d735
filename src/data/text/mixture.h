// Blending the train splits of several prepared datasets (config `data.mix`).
//
// Every global sample slot takes its source from a smooth weighted round-robin over the
// sources' weights (nginx's SWRR, in exact integer arithmetic): after g slots, source s has
// given g * w_s / sum(w) samples to within two (about one in practice), at every prefix, and
// the choice of a slot depends only on how many samples each source has given so far. Each source
// is a TrainLoader of its own (seed + s) whose position is the count of samples it has given, so
// sources roll into new epochs independently. A source's samples keep its own shuffled order.
//
// Ranks: like TrainLoader, the position is global. Rank r's rows of a batch are the rows the
// 1-rank batch holds at those positions, and every rank advances every source identically.
//
// Validation is not blended: a MixtureLoader serves the train split only. Evaluate each
// source's val split with its own ValLoader (in `data.mix` order) and report them per source;
// a single figure, where one is wanted, is their mean weighted by the mixture weights, leaving
// out sources whose val split is empty.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/text/loader.h"
#include "data/text/manifest.h"

namespace herd::data {

// Throws a one-line herd::Error unless every manifest records the same tokenizer identity and
// vocabulary size (blended token ids must mean the same pieces).
void check_same_tokenizer(const std::vector<DatasetManifest>& manifests);

class MixtureLoader {
 public:
  // weights: one per manifest, finite and > 0; only their ratios matter.
  MixtureLoader(const std::vector<DatasetManifest>& manifests, const std::vector<double>& weights,
                int64_t seq_len, uint64_t seed);

  // Same contract as TrainLoader::next_batch: rank `rank`'s rows of the next global batch of
  // `global_batch` samples (divisible by world); advances by global_batch on every rank.
  Batch next_batch(int64_t global_batch, int64_t rank = 0, int64_t world = 1);

  // One line, stored in checkpoints:
  //   "mixture=1 seed=1337 weights=734003,314573 samples=1200,800 drawn=86,37"
  // (weights as integer shares of 2^20, samples per source, samples given per source).
  std::string state() const;
  // Throws a one-line herd::Error when the text is malformed or does not fit this loader:
  // another number of sources, other weights, or a source with another sample count.
  void restore(const std::string& state);

  uint64_t num_tokens() const;   // train tokens of all sources
  uint64_t num_samples() const;  // samples of all sources (one epoch of each)
  int64_t seq_len() const { return seq_len_; }
  size_t num_sources() const { return sources_.size(); }
  // Samples given by source s so far, over all epochs.
  uint64_t drawn(size_t s) const { return drawn_[s]; }
  // The source of each global slot of the last next_batch (all global_batch slots).
  const std::vector<uint32_t>& last_sources() const { return last_sources_; }

 private:
  uint32_t pick_next() const;  // the source of the next slot, from drawn_

  std::vector<TrainLoader> sources_;
  std::vector<int64_t> shares_;  // weights as integer shares of 2^20, each >= 1
  int64_t total_share_ = 0;
  std::vector<uint64_t> drawn_;
  std::vector<uint32_t> last_sources_;
  int64_t seq_len_;
  uint64_t seed_;
};

}  // namespace herd::data
