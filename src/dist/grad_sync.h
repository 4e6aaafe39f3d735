// DDP-style gradient synchronisation: parameters grouped into size-bounded buckets in reverse
// registration order (about the order backward produces their gradients); a bucket's
// all-reduce starts from the autograd hook of its last gradient while backward still runs;
// wait() then averages and writes the gradients back.
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
  GradSync(World& world, const std::vector<torch::Tensor>& params, double bucket_cap_mb = 25);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // false on gradient-accumulation micro-steps before the last: no communication.
  void set_sync(bool on) { sync_ = on; }
  bool sync() const { return sync_; }
  // After the last micro-step's backward: starts buckets no hook completed (unused
  // parameters), waits for all, writes the rank average into each parameter's .grad.
  void wait();

  size_t num_buckets() const { return buckets_.size(); }
  // Parameter indices (into the constructor's list) of bucket b, in bucket order.
  std::vector<size_t> bucket_params(size_t b) const;

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
    torch::Tensor buffer;  // flat, the parameters' dtype and device
    size_t pending = 0;    // gradients not yet copied in this step
    c10::intrusive_ptr<c10d::Work> work;
  };
  void launch_ready_in_order();

  World& world_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;  // buckets start in index order on every rank
  bool sync_ = true;
  std::mutex mu_;
};

}  // namespace herd::dist
