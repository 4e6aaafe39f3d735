#include "train/prefetch.h"

#include <ATen/Parallel.h>

#include <utility>

#include "core/error.h"

namespace herd {

BatchPrefetcher::BatchPrefetcher(std::function<TaskBatch()> produce,
                                 std::function<std::string()> state, int64_t count)
    : produce_(std::move(produce)), state_(std::move(state)), count_(count), remaining_(count) {
  const int caller_threads = at::get_num_threads();
  thread_ = std::thread([this] { run(); });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return started_; });
  // at::set_num_threads(1) on the loader thread also set the default that threads started
  // later take; the caller's count is put back (its own threads are unchanged either way).
  at::set_num_threads(caller_threads);
}

void BatchPrefetcher::run() {
  // One OpenMP/MKL thread here: parallel_for runs inline instead of starting a second team
  // beside the compute's. (Initialised first, so that torch's lazy per-thread setup does not
  // undo it later.)
  at::get_num_threads();
  at::set_num_threads(1);
  torch::NoGradGuard no_grad;
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  cv_.notify_all();
  for (int64_t i = 0; i < count_; ++i) {
    {
      // One batch ahead: the next one is made once the previous one was taken.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !ready_; });
      if (stop_) return;
    }
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
    std::lock_guard<std::mutex> lock(mu_);
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
