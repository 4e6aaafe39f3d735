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

GradSync::GradSync(World& world, const std::vector<torch::Tensor>& params, double bucket_cap_mb)
    : world_(world) {
  HERD_CHECK(bucket_cap_mb > 0, "train.bucket_cap_mb: expected a positive number, got ",
             bucket_cap_mb);
  const int64_t cap = static_cast<int64_t>(bucket_cap_mb * 1024 * 1024);
  for (const auto& p : params)
    if (p.requires_grad()) slots_.push_back({p});
  // Reverse order: the last layers' gradients come first in backward.
  int64_t bytes = 0;
  for (size_t k = slots_.size(); k-- > 0;) {
    auto& s = slots_[k];
    const bool fits = !buckets_.empty() && buckets_.back().buffer.dtype() == s.param.dtype() &&
                      buckets_.back().buffer.device() == s.param.device() &&
                      bytes + s.param.nbytes() <= static_cast<uint64_t>(cap);
    if (!fits) {
      buckets_.push_back({});
      buckets_.back().buffer = torch::empty({0}, s.param.options());
      bytes = 0;
    }
    auto& b = buckets_.back();
    s.bucket = buckets_.size() - 1;
    s.offset = b.buffer.numel();
    b.slots.push_back(k);
    b.buffer = torch::empty({s.offset + s.param.numel()}, s.param.options().requires_grad(false));
    bytes += s.param.nbytes();
  }
  for (auto& b : buckets_) b.pending = b.slots.size();
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

void GradSync::on_grad_ready(size_t i) {
  if (!sync_ || !world_.distributed()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = slots_[i];
  if (s.ready) return;
  s.ready = true;
  auto& b = buckets_[s.bucket];
  torch::NoGradGuard no_grad;
  b.buffer.narrow(0, s.offset, s.param.numel()).copy_(s.param.grad().reshape(-1));
  if (--b.pending == 0) launch_ready_in_order();
}

void GradSync::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    auto& b = buckets_[next_launch_++];
    b.work = world_.allreduce_async(b.buffer);
  }
}

void GradSync::wait() {
  if (!world_.distributed()) return;
  HERD_CHECK(sync_, "GradSync::wait: called on a micro-step without sync");
  std::lock_guard<std::mutex> lock(mu_);
  torch::NoGradGuard no_grad;
  // Parameters no hook reported (unused this step) contribute their current grad or zeros.
  for (auto& s : slots_) {
    if (s.ready) continue;
    s.ready = true;
    auto& b = buckets_[s.bucket];
    auto dst = b.buffer.narrow(0, s.offset, s.param.numel());
    if (s.param.grad().defined()) {
      dst.copy_(s.param.grad().reshape(-1));
    } else {
      dst.zero_();
    }
    --b.pending;
  }
  launch_ready_in_order();
  const double inv = 1.0 / world_.size();
  for (auto& b : buckets_) {
    world_.finish(b.work, "gradient all-reduce");
    b.work.reset();
    b.buffer.mul_(inv);
    for (size_t k : b.slots) {
      auto& s = slots_[k];
      auto src = b.buffer.narrow(0, s.offset, s.param.numel()).view(s.param.sizes());
      if (s.param.grad().defined()) {
        s.param.mutable_grad().copy_(src);
      } else {
        s.param.mutable_grad() = src.clone();
      }
      s.ready = false;
    }
    b.pending = b.slots.size();
  }
  next_launch_ = 0;
}

}  // namespace herd::dist
