// The order a training loader visits its samples in, written once for every loader (text
// tokens, image shards, labelled text): each epoch a permutation fixed by (seed, epoch), a
// global position (epoch, next_sample) that every rank advances alike and that checkpoints
// store (LoaderState), and each rank's slice of a global batch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace herd::data {

// Where a train loader stands; stored in checkpoints.
struct LoaderState {
  uint64_t epoch = 0;
  uint64_t next_sample = 0;  // position within the epoch's order, < num_samples
  uint64_t seed = 0;

  // "epoch=2 next_sample=17 seed=1337"
  std::string to_string() const;
  static LoaderState from_string(const std::string& text);
  // int64 [4]: {format version 1, epoch, next_sample, seed (bit pattern)}
  torch::Tensor to_tensor() const;
  static LoaderState from_tensor(const torch::Tensor& t);
  bool operator==(const LoaderState& o) const {
    return epoch == o.epoch && next_sample == o.next_sample && seed == o.seed;
  }
  bool operator!=(const LoaderState& o) const { return !(*this == o); }
};

// Checks that rank `rank` of `world` can take a slice of a global batch (one-line errors);
// check_even_slice also that the slices are equal.
void check_slice(int64_t global_batch, int64_t rank, int64_t world);
void check_even_slice(int64_t global_batch, int64_t rank, int64_t world);

// Rank `rank`'s rows [rank*n/world, (rank+1)*n/world) of n.
struct RankRows {
  uint64_t begin = 0, end = 0;
  uint64_t size() const { return end - begin; }
};
RankRows rank_rows(uint64_t n, int64_t rank, int64_t world);

// The order of samples in `epoch`: Fisher-Yates over splitmix64 seeded by (seed, epoch).
std::vector<uint64_t> epoch_permutation(uint64_t num_samples, uint64_t seed, uint64_t epoch);

// A position over num_samples samples visited epoch after epoch, each in its permutation.
class EpochOrder {
 public:
  EpochOrder() = default;
  EpochOrder(uint64_t num_samples, uint64_t seed);
  // The sample `offset` places past the position (in a later epoch when it runs over); its
  // epoch in *epoch when given.
  uint64_t sample_at(uint64_t offset, uint64_t* epoch = nullptr);
  void advance(uint64_t count);
  const LoaderState& state() const { return state_; }
  // Checks next_sample < num_samples; `what` names the loader in the error.
  void restore(const LoaderState& state, const std::string& what);
  uint64_t size() const { return n_; }

 private:
  uint64_t n_ = 0;
  LoaderState state_;
  std::vector<uint64_t> order_;  // of order_epoch_
  uint64_t order_epoch_ = UINT64_MAX;
};

}  // namespace herd::data
