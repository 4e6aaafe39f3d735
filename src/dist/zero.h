// ZeRO-1/2 (train.zero): each rank keeps AdamW's m and v for its 1/P slice of every gradient
// bucket (dist/grad_sync.h pads each bucket to a multiple of P and reduce-scatters it) and
// steps only that slice; the updated slices are then all-gathered so that every rank holds
// the whole model again. A parameter may straddle slices: the table of segments below says,
// for each piece of a parameter inside this rank's slice, where it lies in the parameter, in
// the slice, and which optimizer group (lr, weight decay) it belongs to.
//
//   ShardedAdamW zero(plain_adamw, grad_sync, world, peak_lrs);  // after DataParallel::setup
//   norm = zero.clip_grad_norm(max);  zero.step();               // the step's two collectives
//   { GatheredState full(&zero);  if (rank == 0) ckpt::save(...); }  // checkpoint
//
// Checkpoints hold full per-parameter tensors: gather_state() assembles torch's AdamW state
// (exp_avg, exp_avg_sq, step per parameter, on the CPU) on rank 0, so optimizer.pt is the same
// file plain data parallel writes and resumes on any world size and zero stage; load() (or a
// plain optimizer holding a loaded state, at construction) keeps this rank's slices of it.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "dist/grad_sync.h"
#include "dist/world.h"
#include "ops/adamw.h"

namespace herd::dist {

class ShardedAdamW : public torch::optim::AdamW {
 public:
  // Takes `plain`'s groups, options, weight-decay rule (an ops::FusedAdamW's) and any state it
  // holds. initial_lr: each group's peak lr (the decoupled rule's denominator). `sync` must
  // run with zero 1 or 2 over the same parameters.
  ShardedAdamW(const torch::optim::AdamW& plain, GradSync& sync, World& world,
               std::vector<double> initial_lr);

  // AdamW on this rank's slices with each group's lr and weight decay, then the all-gather.
  torch::Tensor step(LossClosure closure = nullptr) override;
  // The L2 norm of the whole averaged gradient (squares summed over this rank's slices, one
  // all-reduce), as a float64 scalar on the device; max_norm > 0 scales the slices as
  // clip_grad_norm does.
  torch::Tensor clip_grad_norm(double max_norm);

  // Collective (every rank): full m, v of every parameter into this optimizer's state on rank
  // 0, which save() then writes as torch's AdamW does; release_state() frees them.
  void gather_state();
  void release_state();
  void save(torch::serialize::OutputArchive& archive) const override;
  // torch's AdamW state from any run (any world size or zero); this rank keeps its slices.
  void load(torch::serialize::InputArchive& archive) override;

  // Elements of m (or v) this rank holds.
  int64_t state_numel() const;

 private:
  struct Segment {
    size_t param = 0;  // GradSync's parameter index
    size_t group = 0;
    int64_t shard_offset = 0, param_offset = 0, numel = 0;
    torch::optim::AdamWParamState state;  // views into m_, v_ of its bucket
  };
  void build_segments();
  void adopt_state();  // state_ (full tensors) -> this rank's slices; state_ emptied
  void all_gather_params();

  GradSync& sync_;
  World& world_;
  ops::WeightDecayRule rule_ = ops::WeightDecayRule::lr_scaled;
  std::vector<double> initial_lr_;              // per group
  std::vector<size_t> group_of_;                // per parameter
  std::vector<int64_t> param_step_;             // per parameter, the same on every rank
  std::vector<torch::Tensor> m_, v_;            // per bucket, this rank's slice
  std::vector<std::vector<Segment>> segments_;  // per bucket
  bool gathered_ = false;
  int64_t saves_ = 0;  // gather_state calls (a test hook counts them)
};

// Scope of a checkpoint under ZeRO: the full optimizer state gathered on rank 0 (null: no-op).
class GatheredState {
 public:
  explicit GatheredState(ShardedAdamW* zero) : zero_(zero) {
    if (zero_) zero_->gather_state();
  }
  ~GatheredState() {
    if (zero_) zero_->release_state();
  }
  GatheredState(const GatheredState&) = delete;
  GatheredState& operator=(const GatheredState&) = delete;

 private:
  ShardedAdamW* zero_;
};

}  // namespace herd::dist
