// Evaluation shared out across data-parallel ranks: batch i of the evaluation order is run
// by rank i % world, each rank sums its figures (loss * rows, correct, rows, ...) on the
// device, and the sums are read once and added over the ranks, so every rank gets the
// figures of the whole split (equal to one process's up to float rounding of the sums).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace herd {

struct EvalShard {
  int64_t rank = 0, world = 1;
  // Element-wise sum of a vector over every rank; empty: one process (identity).
  std::function<std::vector<double>(std::vector<double>)> sum;

  // This rank's batches among the first `count`: rank, rank + world, ...
  std::vector<int64_t> mine(int64_t count) const {
    std::vector<int64_t> out;
    for (int64_t i = rank; i < count; i += world) out.push_back(i);
    return out;
  }
  std::vector<double> reduce(std::vector<double> partial) const {
    return sum ? sum(std::move(partial)) : partial;
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
