// Context parallelism (train.context_parallel: C): the world is data parallel x context
// parallel, the C consecutive ranks [g*C, (g+1)*C) sharing the sequences of data-parallel rank
// g, rank g*C + i holding positions [i*L/C, (i+1)*L/C) of each. ContextGroup is the
// SequenceSplit those ranks' blocks see (blocks/sequence_split.h): its collectives run on a
// process group of the C ranks, as autograd functions whose backward is the matching
// collective. Parameter gradients are still averaged over the whole world (dist/grad_sync.h):
// every rank computes the gradient of its shard's loss through the exchanges, and the
// world's average of those is the gradient of the global mean.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "blocks/sequence_split.h"
#include "config/config.h"
#include "dist/world.h"

namespace herd::dist {

class ContextGroup : public SequenceSplit {
 public:
  // Every rank of the world calls it (C >= 2 dividing world.size()).
  ContextGroup(World& world, int64_t parts);

  int64_t parts() const override { return parts_; }
  int64_t index() const override { return index_; }
  torch::Tensor all_to_all(const torch::Tensor& x, int64_t split_dim,
                           int64_t cat_dim) const override;
  torch::Tensor all_gather(const torch::Tensor& x) const override;
  double sum(double x) const override;

  // The collectives themselves, outside autograd (the autograd functions' two halves).
  // send [C, ...] (row j for shard j) -> [C, ...] (row j from shard j).
  torch::Tensor exchange(const torch::Tensor& send) const;
  torch::Tensor gather(const torch::Tensor& x) const;  // [C, ...x]
  void sum_in_place(torch::Tensor& t) const;

 private:
  World& world_;
  int64_t parts_, index_;
  c10::intrusive_ptr<c10d::Backend> pg_;
};

// The configurations context parallelism cannot run, refused before the first step with a
// one-line error naming train.context_parallel: C not dividing the world size or the rows'
// length `seq_len`, a task other than lm and mlm, or a mixer of `model` whose
// context_parallel_refusal() says why not (naming the layer).
void check_context_parallel(const Config& cfg, int world_size, const std::string& task_type,
                            int64_t seq_len, torch::nn::Module& model);

}  // namespace herd::dist
