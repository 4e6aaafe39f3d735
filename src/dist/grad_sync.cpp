#include "dist/grad_sync.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "core/error.h"

namespace herd::dist {
namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  ReadyHook(GradSync* s, size_t i) : sync(s), index(i) {}
  void operator()(const torch::autograd::Variable&) override { sync->on_grad_ready(index); }
  GradSync* sync;
  size_t index;
};

}  // namespace

GradSync::GradSync(World& world, const std::vector<torch::Tensor>& params, double bucket_cap_mb,
                   int zero)
    : world_(world), zero_(zero) {
  HERD_CHECK(bucket_cap_mb > 0, "train.bucket_cap_mb: expected a positive number, got ",
             bucket_cap_mb);
  HERD_CHECK(zero >= 0 && zero <= 2, "train.zero: expected 0, 1 or 2, got ", zero);
  const int64_t cap = static_cast<int64_t>(bucket_cap_mb * 1024 * 1024);
  for (const auto& p : params)
    if (p.requires_grad()) slots_.push_back({p});
  // Reverse order: the last layers' gradients come first in backward.
  int64_t bytes = 0;
  for (size_t k = slots_.size(); k-- > 0;) {
    auto& s = slots_[k];
    const auto options = s.param.options().requires_grad(false);
    const bool fits = !buckets_.empty() && buckets_.back().options.dtype() == options.dtype() &&
                      buckets_.back().options.device() == options.device() &&
                      bytes + s.param.nbytes() <= static_cast<uint64_t>(cap);
    if (!fits) {
      buckets_.push_back({});
      buckets_.back().options = options;
      bytes = 0;
    }
    auto& b = buckets_.back();
    s.bucket = buckets_.size() - 1;
    s.offset = b.numel;
    b.slots.push_back(k);
    b.numel += s.param.numel();
    bytes += s.param.nbytes();
  }
  const int64_t P = zero_ > 0 ? world_.size() : 1;
  for (auto& b : buckets_) {
    b.pending = b.slots.size();
    b.padded = (b.numel + P - 1) / P * P;  // zero 1/2: every rank's slice the same size
    if (zero_ == 0) b.buffer = torch::empty({b.padded}, b.options);
    if (zero_ > 0) b.grad_shard = torch::zeros({b.padded / P}, b.options);
  }
  for (size_t i = 0; i < slots_.size(); ++i)
    torch::autograd::impl::set_post_acc_grad_hooks(slots_[i].param,
                                                   std::make_unique<ReadyHook>(this, i));
}

GradSync::~GradSync() {
  for (auto& s : slots_) torch::autograd::impl::set_post_acc_grad_hooks(s.param, nullptr);
}

std::vector<size_t> GradSync::bucket_params(size_t b) const {
  return buckets_.at(b).slots;
}

int64_t GradSync::shard_numel(size_t b) const {
  return zero_ > 0 ? buckets_[b].padded / world_.size() : buckets_[b].padded;
}

int64_t GradSync::held_bucket_numel() const {
  int64_t n = 0;
  for (const auto& b : buckets_)
    if (b.buffer.defined()) n += b.buffer.numel();
  return n;
}

void GradSync::copy_in(Slot& s, const torch::Tensor& grad) {
  auto& b = buckets_[s.bucket];
  if (!b.buffer.defined()) {  // zero 1/2: the bucket's first gradient this micro-step
    b.buffer = torch::empty({b.padded}, b.options);
    b.buffer.narrow(0, b.numel, b.padded - b.numel).zero_();
  }
  auto dst = b.buffer.narrow(0, s.offset, s.param.numel());
  if (grad.defined()) {
    dst.copy_(grad.reshape(-1));
  } else {
    dst.zero_();
  }
  // zero 2: the bucket holds it now; the next micro-step's backward starts a fresh .grad.
  if (zero_ == 2 && s.param.grad().defined()) s.param.mutable_grad().reset();
  s.ready = true;
  --b.pending;
}

void GradSync::on_grad_ready(size_t i) {
  if (!sync_ || !world_.distributed()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = slots_[i];
  if (s.ready) return;
  torch::NoGradGuard no_grad;
  copy_in(s, s.param.grad());
  if (buckets_[s.bucket].pending == 0) launch_ready_in_order();
}

void GradSync::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    auto& b = buckets_[next_launch_++];
    if (zero_ == 0) {
      b.work = world_.allreduce_async(b.buffer);
    } else {
      b.scatter = world_.reduce_scatter_async(b.buffer);
    }
  }
}

void GradSync::write_back(Bucket& b) {
  world_.finish(b.work, "gradient all-reduce");
  b.work.reset();
  b.buffer.mul_(1.0 / world_.size());
  for (size_t k : b.slots) {
    auto& s = slots_[k];
    auto src = b.buffer.narrow(0, s.offset, s.param.numel()).view(s.param.sizes());
    if (s.param.grad().defined()) {
      s.param.mutable_grad().copy_(src);
    } else {
      s.param.mutable_grad() = src.clone();
    }
  }
}

void GradSync::reduce_into_shard(Bucket& b, bool accumulate) {
  const auto sum = world_.finish_reduce_scatter(b.scatter, "gradient reduce-scatter");
  const double inv = 1.0 / world_.size();
  if (accumulate) {
    b.grad_shard.add_(sum, inv);
  } else {
    torch::mul_out(b.grad_shard, sum, inv);  // as zero 0's average: the same bits
  }
  b.buffer = torch::Tensor();  // the full bucket is released
}

void GradSync::before_backward(bool last_micro_step) {
  if (zero_ < 2) {
    sync_ = last_micro_step;
    return;
  }
  if (micro_step_pending_) {
    finish_micro_step(accumulate_);
    accumulate_ = true;
  }
  sync_ = micro_step_pending_ = true;
}

void GradSync::wait() {
  finish_micro_step(accumulate_);
  accumulate_ = micro_step_pending_ = false;
}

void GradSync::finish_micro_step(bool accumulate) {
  if (!world_.distributed()) return;
  HERD_CHECK(sync_, "GradSync::wait: called on a micro-step without sync");
  std::lock_guard<std::mutex> lock(mu_);
  torch::NoGradGuard no_grad;
  // Parameters no hook reported (unused this step) contribute their current grad or zeros.
  for (auto& s : slots_)
    if (!s.ready) copy_in(s, s.param.grad());
  launch_ready_in_order();
  for (auto& b : buckets_) {
    if (zero_ == 0) {
      write_back(b);
    } else {
      reduce_into_shard(b, accumulate);
    }
    for (size_t k : b.slots) slots_[k].ready = false;
    b.pending = b.slots.size();
  }
  next_launch_ = 0;
}

}  // namespace herd::dist
