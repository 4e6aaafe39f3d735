// Context parallelism as a block sees it (train.context_parallel; docs/multi-node.md).
//
// During a training step src/dist may split every sequence into C = parts() contiguous shards,
// one per process of a group, and make itself the current SequenceSplit (SequenceSplitScope).
// A mixer's forward then receives [B, L/C, D], the positions [index() * L/C, (index() + 1) * L/C)
// of each sequence, and returns its output at those positions, equal to the unsplit forward's.
// Blocks reach the other shards only through the three collectives of SequenceSplit, whose
// backward is the matching collective, so they know nothing of ranks, groups or backends.
// Every rank of a group calls the same collectives in the same order, forward and backward.
//
// Without a split (one process, evaluation, generation) the helpers below are identities, so a
// block's code reads the same either way:
//   z = shard_halo(x, K - 1)               previous shard's last K-1 positions in front (short
//   conv) z = gather_positions(x)                [.., Ch, L/C] -> [.., Ch/C, L]: my channels, every
//   position k = local_channels(filter(global_length(L)), 0)    the full filter, my channels' rows
//   y = scatter_positions(z)               [.., Ch/C, L] -> [.., Ch, L/C]: back to my positions
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace herd {

class SequenceSplit {
 public:
  virtual ~SequenceSplit() = default;
  virtual int64_t parts() const = 0;  // C >= 2
  virtual int64_t index() const = 0;  // this process's shard, 0..C-1
  // x split along split_dim into C equal pieces, piece j sent to shard j; the pieces received
  // concatenated along cat_dim in shard order. Backward: the reverse exchange.
  virtual torch::Tensor all_to_all(const torch::Tensor& x, int64_t split_dim,
                                   int64_t cat_dim) const = 0;
  // Every shard's x (one shape on all) stacked in shard order: [C, ...x]. Backward: the
  // gradients summed over the shards, this shard's row.
  virtual torch::Tensor all_gather(const torch::Tensor& x) const = 0;
  // A number summed over the shards, outside autograd (token counts of a loss).
  virtual double sum(double x) const = 0;
};

// The split in force, or null: sequences are whole.
const SequenceSplit* sequence_split();

// Makes `split` current until destroyed (the previous one is restored). Not thread-local: a
// layer recomputed in backward (activation checkpointing) sees the split of its step.
class SequenceSplitScope {
 public:
  explicit SequenceSplitScope(const SequenceSplit* split);
  ~SequenceSplitScope();
  SequenceSplitScope(const SequenceSplitScope&) = delete;
  SequenceSplitScope& operator=(const SequenceSplitScope&) = delete;

 private:
  const SequenceSplit* previous_;
};

// --- helpers; the identity (or the whole-sequence value) without a split ---
int64_t split_parts();                          // C, 1 without a split
int64_t global_length(int64_t local_length);    // L
int64_t position_offset(int64_t local_length);  // global position of local position 0
// [.., Ch, L/C] -> [.., Ch/C, L] (Ch divisible by C): the channels of this shard's piece, at
// every position of the sequence.
torch::Tensor gather_positions(const torch::Tensor& x);
// The inverse: [.., Ch/C, L] -> [.., Ch, L/C].
torch::Tensor scatter_positions(const torch::Tensor& y);
// x [.., L/C] -> [.., L]: every shard's positions, in order (attention's keys and values).
torch::Tensor all_positions(const torch::Tensor& x);
// This shard's piece of t along dim: the channels gather_positions() leaves here.
torch::Tensor local_channels(const torch::Tensor& t, int64_t dim);
// x [.., L/C] with the previous shard's last `before` positions in front and the next shard's
// first `after` behind (zeros past either end of the sequence); `before`, `after` <= L/C.
// Without a split, x padded with zeros.
torch::Tensor shard_halo(const torch::Tensor& x, int64_t before, int64_t after = 0);
// For a loss that is a mean over this shard's `local_count` tokens: the factor that makes it
// C * (local sum) / (count over the group's shards), so that the ranks' average is the mean
// over every token of the sequences (1 without a split).
double split_mean_weight(double local_count);

}  // namespace herd
