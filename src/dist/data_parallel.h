// What the training loop calls to run data-parallel; a single process (no RANK/WORLD_SIZE or
// SLURM variables) gets a world of one where every call is a cheap no-op.
//
//   DataParallel dp(cfg);                       // joins the process group (env)
//   rt.device = dp.device(rt.device);           // cuda:LOCAL_RANK under NCCL
//   dp.setup(*model);                           // after building/loading: rank 0's weights
//   opt = dp.shard_optimizer(std::move(opt), lrs);  // train.zero 1/2: this rank's slice
//   batch = loader.next_batch(B, dp.data_rank(), dp.data_size());  // + this rank's positions
//   SequenceSplitScope split(dp.context());     // train.context_parallel: around forward+backward
//   dp.before_backward(m + 1 == accum);         // all-reduce only on the last micro-step
//   dp.after_backward(step);                    // averaged grads in .grad
//   loss = dp.mean(loss);  if (dp.is_main()) save(); dp.barrier("checkpoint");
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "dist/context_parallel.h"
#include "dist/grad_sync.h"
#include "dist/world.h"
#include "dist/zero.h"

namespace herd::dist {

class DataParallel {
 public:
  explicit DataParallel(const Config& cfg, const DistEnv& env = detect_env());

  int rank() const { return world_->rank(); }
  int size() const { return world_->size(); }
  bool is_main() const { return world_->is_main(); }
  bool active() const { return world_->distributed(); }
  World& world() { return *world_; }
  // This rank's device: `requested` with the CUDA index set to the local rank.
  torch::Device device(torch::Device requested) const;
  // train.context_parallel C: the data-parallel rank and size (rank / C, size / C), whose rows
  // this rank's context group shares; C = 1: rank() and size().
  int data_rank() const { return rank() / context_parts_; }
  int data_size() const { return size() / context_parts_; }
  // The split every block sees during a training step (SequenceSplitScope), null for C = 1.
  const SequenceSplit* context() const { return context_.get(); }
  // The per-data-parallel-rank share of a global batch; throws when it does not divide.
  int64_t local_batch(int64_t global_batch, const std::string& source) const;

  // Broadcasts rank 0's parameters and buffers and hooks gradient synchronisation.
  void setup(torch::nn::Module& model);
  // train.zero 1/2 on several ranks: `plain` (with any state loaded into it) becomes this
  // rank's ShardedAdamW; otherwise returned as it is. Call after setup().
  std::unique_ptr<torch::optim::AdamW> shard_optimizer(std::unique_ptr<torch::optim::AdamW> plain,
                                                       std::vector<double> initial_lr);
  // The sharded optimizer (null unless shard_optimizer made one).
  ShardedAdamW* zero() const { return zero_; }
  void before_backward(bool last_micro_step);
  // On the last micro-step: waits for the gradient all-reduce; in debug mode checks after the
  // first step that all ranks hold the same parameters (call after optimizer.step()).
  void after_backward();
  void after_step(int64_t step_done);

  double mean(double x) { return world_->mean(x); }
  std::vector<double> sum(std::vector<double> v) { return world_->sum(std::move(v)); }
  void barrier(const std::string& what) { world_->barrier(what); }

 private:
  std::unique_ptr<World> world_;
  std::unique_ptr<ContextGroup> context_;
  int context_parts_ = 1;
  std::unique_ptr<GradSync> sync_;
  torch::nn::Module* model_ = nullptr;
  double bucket_cap_mb_;
  bool check_first_step_;
  int zero_stage_ = 0;
  ShardedAdamW* zero_ = nullptr;
  bool checked_ = false;
};

}  // namespace herd::dist
