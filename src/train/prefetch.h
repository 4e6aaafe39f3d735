// The training loop's batches, produced one step ahead on a background thread: while step k
// computes, the loader builds batch k+1. Batches come out in exactly the order `produce`
// makes them, each with the loader state right after it, which is what a checkpoint taken
// after consuming that batch must record (not the state after the prefetched one).
//
// The loader's work is memcpy-like: its thread runs torch with one intra-op thread, so its
// parallel_for loops run inline instead of starting a second OpenMP team beside the compute's.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "train/task.h"

namespace herd {

class BatchPrefetcher {
 public:
  struct Item {
    TaskBatch batch;
    std::string loader_state;  // the loader's state after producing this batch
  };
  // Calls produce() then state() `count` times on the background thread, which starts now;
  // from here on the loader belongs to that thread until the prefetcher is destroyed.
  BatchPrefetcher(std::function<TaskBatch()> produce, std::function<std::string()> state,
                  int64_t count);
  // Stops and joins the thread (a batch being produced is finished, then dropped).
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // The next batch, waiting for it if needed; rethrows what the loader threw. Throws
  // herd::Error after `count` batches.
  Item next();

 private:
  void run();

  std::function<TaskBatch()> produce_;
  std::function<std::string()> state_;
  const int64_t count_;
  int64_t remaining_;  // batches next() will still hand out (the caller's thread only)
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Item> ready_;
  std::exception_ptr error_;
  bool started_ = false;  // the loader thread has set itself up
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace herd
