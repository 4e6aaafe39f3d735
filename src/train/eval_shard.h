// Evaluation shared out across data-parallel ranks: batch i of the evaluation order is run
// by data rank i % data size, each rank sums its figures (loss * rows, correct, rows, ...) on
// the device, and the sums are read once and added over the ranks, so every rank gets the
// figures of the whole split (equal to one process's up to float rounding of the sums).
//
// Under context parallelism (train.context_parallel: C; docs/multi-node.md) the C ranks of a
// data rank's group run the same batches, each on its shard of positions as in training
// (TaskBatch::sequence_shard with context_index() of context_parts()), inside a
// SequenceSplitScope of `split` so that the blocks exchange what they need. Each figure is
// then added once over the group: counts over positions by every shard (they add up), counts
// of whole rows by the first shard only, and a split loss as its shard's term (loss_term).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "blocks/sequence_split.h"

namespace herd {

struct EvalShard {
  int64_t data_rank = 0, data_size = 1;
  // Element-wise sum of a vector over every rank of the world; empty: one process (identity).
  std::function<std::vector<double>(std::vector<double>)> sum;
  // Context parallel: the split of this rank's group; null: whole sequences.
  const SequenceSplit* split = nullptr;

  // This data rank's batches among the first `count`: data_rank, data_rank + data_size, ...
  std::vector<int64_t> mine(int64_t count) const {
    std::vector<int64_t> out;
    for (int64_t i = data_rank; i < count; i += data_size) out.push_back(i);
    return out;
  }
  std::vector<double> reduce(std::vector<double> partial) const {
    return sum ? sum(std::move(partial)) : partial;
  }

  int64_t context_index() const { return split ? split->index() : 0; }
  int64_t context_parts() const { return split ? split->parts() : 1; }
  // Whether this rank counts the figures of whole rows (rows, examples scored whole): one
  // shard of each group does.
  bool first_shard() const { return context_index() == 0; }
  // A count over this shard's positions summed over the group's shards (a collective: every
  // shard calls it for the same batch).
  double group_sum(double local) const { return split ? split->sum(local) : local; }
  // This shard's term of loss * weight, for a model's loss under the split (its shard's mean
  // weighted so that the group's average is the mean over the whole sequences,
  // blocks/sequence_split.h) and a weight of the whole rows (their number, or the group's
  // scored tokens): the group's terms add up to the unsplit loss * weight.
  torch::Tensor loss_term(const torch::Tensor& loss, double weight) const {
    return loss * (weight / static_cast<double>(context_parts()));
  }
};

// How many batches of `batch` samples an evaluation of `samples` runs (the last may be
// short), at most max_batches (0: no limit).
int64_t eval_batch_count(uint64_t samples, int64_t batch, int64_t max_batches);

// A fixed number of evaluation sums, each a device scalar or a host double.
class EvalSums {
 public:
  explicit EvalSums(size_t n) : device_(n), host_(n, 0.0) {}
  void add(size_t k, const torch::Tensor& x);  // a scalar tensor, summed in float64
  void add(size_t k, double x) { host_[k] += x; }
  // This rank's sums read in one copy, then added over the ranks of `shard`.
  std::vector<double> total(const EvalShard& shard) const;

 private:
  std::vector<torch::Tensor> device_;
  std::vector<double> host_;
};

}  // namespace herd
