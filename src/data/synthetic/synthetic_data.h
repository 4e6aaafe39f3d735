// The examples of a `data.synthetic` run: a training set of train_examples (visited epoch
// after epoch in the shared EpochOrder, data/epoch_order.h) or, with train_examples 0, fresh
// examples every step; and a fixed held-out test set. Example i of a split is generated from
// its own seed (train.seed, the split, i), so nothing is stored: batches, resume and any
// number of ranks need only the position, which checkpoints keep as a LoaderState string.
// Where the reference drops repeated examples within a split (safari), the repeats are drawn
// again at construction (their retry numbers are all that is kept); train and test are not
// made disjoint (neither reference does).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/epoch_order.h"
#include "data/synthetic/generator.h"

namespace herd::data::synthetic {

enum class Split : uint64_t { kTrain = 1, kTest = 2, kFresh = 3 };

// Example i of a split, deterministic from (seed, split, i).
class ExampleSet {
 public:
  // count 0 with kFresh: unbounded. distinct: draw repeats again (throws when the task
  // cannot make `count` distinct examples, naming `count_key`).
  ExampleSet(const Generator& gen, uint64_t seed, Split split, uint64_t count,
             const std::string& count_key);
  void fill(uint64_t index, Example& out) const;
  uint64_t size() const { return count_; }

 private:
  const Generator& gen_;
  uint64_t seed_;
  Split split_;
  uint64_t count_;
  std::vector<uint32_t> retry_;  // per example: draws discarded as repeats (distinct sets)
};

// A batch of rows: inputs, targets (kIgnore where the loss does not look), answer mask.
struct SyntheticBatch {
  torch::Tensor input, target;  // [B, T] int64
  torch::Tensor answer;         // [B, T] bool
  torch::Tensor group;          // [B] int64: the example's group (passkey depth)
};

class SyntheticData {
 public:
  SyntheticData(const SyntheticConfig& cfg, uint64_t seed);

  // Rank `rank`'s rows of the next global batch (which divides by world); every rank
  // advances by global_batch. Targets masked to the answers with loss: answer.
  SyntheticBatch next_batch(int64_t global_batch, int64_t rank = 0, int64_t world = 1);
  std::string state() const;
  void restore(const std::string& state);

  // Test examples [first, first + n), targets masked to the answers.
  SyntheticBatch test_batch(uint64_t first, int64_t n) const;
  uint64_t test_size() const { return test_->size(); }

  const Generator& generator() const { return *gen_; }
  int64_t row_len() const { return gen_->row_len(); }
  bool fresh() const { return cfg_.train_examples == 0; }
  std::string describe() const;
  // What the weights' meaning depends on: the task and its vocabulary.
  std::string identity() const;

 private:
  SyntheticBatch rows(const ExampleSet& set, const std::vector<uint64_t>& ids,
                      bool answers_only) const;

  SyntheticConfig cfg_;
  std::unique_ptr<Generator> gen_;
  std::unique_ptr<ExampleSet> train_, test_;
  EpochOrder order_;   // a fixed training set's position
  LoaderState fresh_;  // fresh examples: epoch 0, next_sample = examples drawn so far
};

}  // namespace herd::data::synthetic
