// DDP-style gradient synchronisation: parameters grouped into size-bounded buckets in reverse
// registration order (about the order backward produces their gradients); a bucket's
// collective starts from the autograd hook of its last gradient while backward still runs.
//
// zero 0 (plain data parallel): the bucket is all-reduced; wait() averages and writes the
// gradients back into each parameter's .grad.
// zero 1 and 2 (dist/zero.h): every bucket is padded to a multiple of the world size and
// reduce-scattered instead; each rank keeps the average of its 1/P slice of the bucket, the
// "gradient shard" that its sharded optimizer steps. The full bucket buffer exists only from
// its first gradient to the end of its reduce-scatter. zero 2 also releases each parameter's
// .grad as soon as it is copied into the bucket, and is synced on every micro-step: the
// micro-steps accumulate into the shard.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "dist/world.h"

namespace herd::dist {

class GradSync {
 public:
  // Registers a post-accumulate-grad hook on every parameter that requires grad.
  GradSync(World& world, const std::vector<torch::Tensor>& params, double bucket_cap_mb = 25,
           int zero = 0);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // Before each micro-step's backward. zero 0/1: only the last micro-step communicates;
  // zero 2: every one does, and the previous one is finished here (accumulated into the
  // shard) before this backward refills the buckets.
  void before_backward(bool last_micro_step);
  // After the last micro-step's backward: starts buckets no hook completed (unused
  // parameters: their current grad or zeros), waits for all. zero 0 writes the rank average
  // into each parameter's .grad; zero 1/2 into the gradient shards.
  void wait();

  int zero() const { return zero_; }
  size_t num_buckets() const { return buckets_.size(); }
  // Parameter indices (into the parameters that require grad, in the constructor's order) of
  // bucket b, in bucket order.
  std::vector<size_t> bucket_params(size_t b) const;

  // --- the shard table (zero 1/2; with zero 0 a bucket is one shard of its own size) ---
  size_t num_params() const { return slots_.size(); }
  const torch::Tensor& param(size_t i) const { return slots_[i].param; }
  size_t bucket_of(size_t i) const { return slots_[i].bucket; }
  int64_t offset_of(size_t i) const { return slots_[i].offset; }  // into its bucket
  // Elements of bucket b's padded buffer (a multiple of the world size under zero 1/2).
  int64_t padded_numel(size_t b) const { return buckets_[b].padded; }
  // This rank's slice of bucket b: [shard_begin, shard_begin + shard_numel).
  int64_t shard_numel(size_t b) const;
  int64_t shard_begin(size_t b) const { return world_.rank() * shard_numel(b); }
  // Elements of full bucket buffers allocated now (zero 1/2: 0 between steps).
  int64_t held_bucket_numel() const;
  // The averaged gradient of this rank's slice of bucket b (zero 1/2), after wait().
  torch::Tensor& grad_shard(size_t b) { return buckets_[b].grad_shard; }

  // Called by the hook of parameter i (autograd's thread).
  void on_grad_ready(size_t i);

 private:
  struct Slot {
    torch::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // into the bucket's buffer
    bool ready = false;
  };
  struct Bucket {
    std::vector<size_t> slots;
    int64_t numel = 0, padded = 0;
    torch::TensorOptions options;
    torch::Tensor buffer;  // flat; zero 1/2: only while gradients are gathered and reduced
    size_t pending = 0;    // gradients not yet copied in this step
    c10::intrusive_ptr<c10d::Work> work;  // zero 0
    World::ReduceScatter scatter;         // zero 1/2
    torch::Tensor grad_shard;             // zero 1/2
  };
  void copy_in(Slot& s, const torch::Tensor& grad);
  void launch_ready_in_order();
  void write_back(Bucket& b);
  void reduce_into_shard(Bucket& b, bool accumulate);
  void finish_micro_step(bool accumulate);

  World& world_;
  int zero_ = 0;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;  // buckets start in index order on every rank
  bool sync_ = true;
  bool micro_step_pending_ = false;  // zero 2: a backward whose buckets are not yet reduced
  bool accumulate_ = false;          // zero 2: later micro-steps add to the shard
  std::mutex mu_;
};

}  // namespace herd::dist
