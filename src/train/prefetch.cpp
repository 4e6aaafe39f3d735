#include "train/prefetch.h"

#include <c10/util/ParallelGuard.h>

#include <utility>

#include "core/error.h"

namespace herd {

BatchPrefetcher::BatchPrefetcher(std::function<TaskBatch()> produce,
                                 std::function<std::string()> state, int64_t count)
    : produce_(std::move(produce)),
      state_(std::move(state)),
      count_(count),
      remaining_(count),
      thread_([this] { run(); }) {}

void BatchPrefetcher::run() {
  // parallel_for on this thread runs inline, as if nested in a parallel region.
  c10::ParallelGuard serial(true);
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < count_; ++i) {
    Item item;
    try {
      item.batch = produce_();
      item.loader_state = state_();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_ || !ready_; });
    if (stop_) return;
    ready_ = std::move(item);
    cv_.notify_all();
  }
}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

BatchPrefetcher::Item BatchPrefetcher::next() {
  HERD_CHECK(remaining_ > 0, "batch prefetcher: every batch it was asked for was handed out");
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ready_.has_value() || error_; });
  if (!ready_) std::rethrow_exception(error_);
  Item item = std::move(*ready_);
  ready_.reset();
  --remaining_;
  cv_.notify_all();
  return item;
}

}  // namespace herd
