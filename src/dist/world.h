// One rank's view of a data-parallel run: a c10d process group (Gloo on CPU, NCCL on CUDA)
// joined through a TCPStore hosted by rank 0, with collectives whose failures name the rank
// that died or hung.
#pragma once

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dist/env.h"

namespace herd::dist {

struct WorldOptions {
  std::string backend = "auto";  // auto (nccl when the device is CUDA, else gloo) | nccl | gloo
  double timeout_s = 600;        // a collective waiting longer fails, naming the late rank
  torch::Device device = torch::kCPU;  // the device this rank trains on
};

class World {
 public:
  // A single-process world when env.world_size == 1 (collectives are identities), unless
  // options.backend is nccl: then a group of one.
  World(const DistEnv& env, const WorldOptions& options);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }
  // A process group exists: several ranks, or one rank with train.backend: nccl set
  // explicitly (so that one GPU runs the NCCL paths: gradient buckets, ZeRO, context groups).
  bool distributed() const { return grouped_; }
  const std::string& backend() const { return backend_name_; }
  // Where collectives run: the CUDA device for NCCL, the CPU for Gloo.
  torch::Device device() const { return device_; }
  // Collectives this rank has started so far.
  int64_t collectives() const { return seq_.load(); }

  // Every rank waits here; `what` names the point in errors.
  void barrier(const std::string& what);
  // Element-wise sums across ranks of a few scalars (metrics).
  std::vector<double> sum(std::vector<double> values);
  double mean(double value) { return sum({value})[0] / size(); }
  // In-place sum of `t` across ranks, asynchronous; finish() with the returned work.
  c10::intrusive_ptr<c10d::Work> allreduce_async(torch::Tensor& t);
  void finish(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what);
  // Sum of `full` across ranks, this rank's 1/size() slice of it kept (full.numel() a multiple
  // of size()); finish with finish_reduce_scatter, which returns the rank's summed slice.
  // NCCL reduce-scatters into a slice-sized buffer; Gloo all-reduces `full` and the slice is
  // a view of it (correct, not faster: the same traffic as an all-reduce).
  struct ReduceScatter {
    c10::intrusive_ptr<c10d::Work> work;
    torch::Tensor full, shard;
  };
  ReduceScatter reduce_scatter_async(torch::Tensor full);
  torch::Tensor finish_reduce_scatter(ReduceScatter& rs, const std::string& what);
  // Every rank's `shard` (one size on all) concatenated by rank into `full`, synchronously.
  void all_gather(torch::Tensor& full, torch::Tensor& shard, const std::string& what);
  // Rank 0's parameters and buffers replace every other rank's.
  void broadcast_parameters(torch::nn::Module& module);
  // Throws on every rank when some rank's parameters differ from rank 0's (bitwise).
  void check_parameters_identical(torch::nn::Module& module, const std::string& when);

  // A process group of the ranks [first, first + size), which must hold this rank, on the
  // world's backend; each of them calls it with the same `name` (train.context_parallel's
  // groups). Its collectives count in the heartbeat through count_collective().
  c10::intrusive_ptr<c10d::Backend> new_group(const std::string& name, int first, int size);
  void count_collective() { ++seq_; }

  // Rethrows a failed collective as a one-line herd::Error naming the ranks that stopped
  // beating (died) or fell behind (hung).
  [[noreturn]] void fail(const std::string& what, const std::exception& e);

 private:
  void beat_loop();
  std::string diagnose();

  DistEnv env_;
  bool grouped_ = false;
  std::string backend_name_ = "none";
  torch::Device device_ = torch::kCPU;
  double timeout_s_ = 600;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> pg_;
  std::atomic<int64_t> seq_{0};  // collectives entered: a hung rank's count lags
  std::atomic<bool> stop_{false};
  bool failed_ = false;
  std::thread beat_;
};

}  // namespace herd::dist
