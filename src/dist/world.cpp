#include "dist/world.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <sstream>

#include "core/error.h"
#include "dist/backends.h"

namespace herd::dist {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kBeatEvery{500};

std::string beat_key(int rank) {
  return str("herd/beat/", rank);
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

std::string to_string(const std::vector<uint8_t>& v) {
  return std::string(v.begin(), v.end());
}

}  // namespace

World::World(const DistEnv& env, const WorldOptions& o) : env_(env), timeout_s_(o.timeout_s) {
  device_ = o.device;
  if (device_.is_cuda() && torch::cuda::device_count() > 0)
    device_ = torch::Device(
        torch::kCUDA, static_cast<c10::DeviceIndex>(env_.local_rank % torch::cuda::device_count()));
  grouped_ = env_.world_size > 1 || o.backend == "nccl";
  if (!grouped_) return;
  backend_name_ = o.backend == "auto" ? (device_.is_cuda() ? "nccl" : "gloo") : o.backend;
  HERD_CHECK(backend_name_ == "gloo" || backend_name_ == "nccl",
             "train.backend: expected auto, nccl or gloo, got \"", o.backend, "\"");
  HERD_CHECK(backend_name_ != "nccl" || device_.is_cuda(),
             "train.backend: nccl needs a CUDA device (train.device: cuda), this rank trains on ",
             device_.str());
  const auto timeout = milliseconds(static_cast<int64_t>(timeout_s_ * 1000));
  c10d::TCPStoreOptions so;
  // A lone process (NCCL world of one) hosts its store on any free port.
  so.port = static_cast<uint16_t>(env_.world_size == 1 && !env_.agent_store ? 0 : env_.master_port);
  so.isServer = env_.rank == 0 && !env_.agent_store;
  so.numWorkers = env_.agent_store ? std::nullopt : std::optional<size_t>(env_.world_size);
  so.waitWorkers = !env_.agent_store;
  so.timeout = timeout;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, so);
    store_ = c10::make_intrusive<c10d::PrefixStore>(env_.store_prefix, tcp);
    store_->set(beat_key(env_.rank), std::string("0 0"));
  } catch (const std::exception& e) {
    throw Error(str("rank ", env_.rank, ": rendezvous at ", env_.master_addr, ":", env_.master_port,
                    " failed within ", timeout_s_,
                    " s (train.dist_timeout_s; is rank 0 running, MASTER_ADDR/MASTER_PORT right "
                    "and the port free?): ",
                    first_line(e.what())));
  }
  beat_ = std::thread([this] { beat_loop(); });
  try {
    if (backend_name_ == "nccl") {
      pg_ = make_nccl_backend(store_, env_.rank, env_.world_size, timeout, device_);
    } else {
      pg_ = make_gloo_backend(store_, env_.rank, env_.world_size, timeout);
    }
  } catch (const std::exception& e) {
    // The destructor does not run for a constructor that throws: stop the heartbeat here
    // (a joinable std::thread destroyed would std::terminate the process).
    stop_ = true;
    beat_.join();
    if (dynamic_cast<const Error*>(&e)) throw;
    throw Error(str("rank ", env_.rank, ": the ", backend_name_,
                    " backend did not come up: ", first_line(e.what())));
  }
}

c10::intrusive_ptr<c10d::Backend> World::new_group(const std::string& name, int first, int size) {
  HERD_CHECK(store_ && first <= rank() && rank() < first + size, "process group ", name, ": rank ",
             rank(), " is not in ranks [", first, ", ", first + size, ")");
  auto store = c10::make_intrusive<c10d::PrefixStore>(str("group/", name, "/", first), store_);
  const auto timeout = milliseconds(static_cast<int64_t>(timeout_s_ * 1000));
  try {
    if (backend_name_ == "nccl")
      return make_nccl_backend(store, rank() - first, size, timeout, device_);
    return make_gloo_backend(store, rank() - first, size, timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(str("rank ", rank(), ": the ", backend_name_, " group ", name,
                    " did not come up: ", first_line(e.what())));
  }
}

World::~World() {
  stop_ = true;
  if (beat_.joinable()) beat_.join();
  // After a failed collective the backend may still hold threads blocked on the dead peer;
  // leaking it lets the process exit at once with the error already reported.
  if (failed_) {
    if (backend_name_ == "nccl") pg_->abort();
    (void)pg_.release();
    (void)store_.release();
  } else if (pg_) {
    pg_->shutdown();
  }
}

void World::beat_loop() {
  for (int64_t beat = 1; !stop_; ++beat) {
    try {
      store_->set(beat_key(env_.rank), str(beat, " ", seq_.load()));
    } catch (...) {
      // Rank 0 (the store) is gone; the next collective reports it. Nothing may escape this
      // thread: an exception leaving it would std::terminate the process.
    }
    for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(kBeatEvery / 10);
  }
}

std::string World::diagnose() {
  auto read = [&](std::vector<std::pair<int64_t, int64_t>>& out) {
    out.assign(size(), {-1, -1});
    for (int r = 0; r < size(); ++r) {
      if (r == rank() || !store_->check({beat_key(r)})) continue;
      std::istringstream in(to_string(store_->get(beat_key(r))));
      in >> out[r].first >> out[r].second;
    }
  };
  std::vector<std::pair<int64_t, int64_t>> a, b;
  try {
    read(a);
    std::this_thread::sleep_for(kBeatEvery * 4);
    read(b);
  } catch (const std::exception&) {
    return "rank 0 stopped (its rendezvous store is unreachable)";
  }
  std::string dead, late;
  for (int r = 0; r < size(); ++r) {
    if (r == rank()) continue;
    if (b[r].first < 0 || a[r].first == b[r].first) {
      dead += str(dead.empty() ? "" : ", ", r);
    } else if (b[r].second < seq_.load()) {
      late += str(late.empty() ? "" : ", ", r);
    }
  }
  std::string s;
  if (!dead.empty()) s = str("rank ", dead, " stopped (no heartbeat for 2 s)");
  if (!late.empty())
    s += str(s.empty() ? "" : "; ", "rank ", late, " is hung (has not reached collective #",
             seq_.load(), ")");
  return s.empty() ? "no rank stopped or fell behind: a network or backend failure" : s;
}

void World::fail(const std::string& what, const std::exception& e) {
  failed_ = true;
  std::string msg = e.what();
  msg = msg.substr(0, msg.find('\n'));
  throw Error(str("rank ", rank(), ": ", what, " failed: ", diagnose(),
                  " (train.dist_timeout_s=", timeout_s_, "; ", msg, ")"));
}

void World::finish(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

c10::intrusive_ptr<c10d::Work> World::allreduce_async(torch::Tensor& t) {
  ++seq_;
  std::vector<at::Tensor> v{t};
  try {
    return pg_->allreduce(v);
  } catch (const std::exception& e) {
    fail("all-reduce", e);
  }
}

World::ReduceScatter World::reduce_scatter_async(torch::Tensor full) {
  HERD_CHECK(full.numel() % size() == 0, "reduce-scatter: ", full.numel(),
             " elements do not split among ", size(), " ranks");
  const int64_t n = full.numel() / size();
  if (backend_name_ != "nccl") {
    // Gloo: an all-reduce, then this rank's slice (ProcessGroupGloo's own reduce-scatter is no
    // cheaper and not in every build).
    ReduceScatter rs{allreduce_async(full), full, full.narrow(0, rank() * n, n)};
    return rs;
  }
  ReduceScatter rs{{}, full, torch::empty({n}, full.options())};
  ++seq_;
  try {
    rs.work = pg_->_reduce_scatter_base(rs.shard, rs.full);
  } catch (const std::exception& e) {
    fail("reduce-scatter", e);
  }
  return rs;
}

torch::Tensor World::finish_reduce_scatter(ReduceScatter& rs, const std::string& what) {
  finish(rs.work, what);
  rs.work.reset();
  auto shard = rs.shard;
  rs.full = rs.shard = torch::Tensor();  // the full buffer goes with the caller's last use
  return shard;
}

void World::all_gather(torch::Tensor& full, torch::Tensor& shard, const std::string& what) {
  HERD_CHECK(full.numel() == shard.numel() * size(), "all-gather: ", full.numel(),
             " elements are not ", size(), " shards of ", shard.numel());
  ++seq_;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = pg_->_allgather_base(full, shard);
  } catch (const std::exception& e) {
    fail(what, e);
  }
  finish(work, what);
}

void World::barrier(const std::string& what) {
  if (!distributed()) return;
  // A one-element all-reduce: unlike Gloo's barrier it honours the collective timeout on
  // every backend and counts in the heartbeat's sequence.
  auto t = torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  finish(allreduce_async(t), str("barrier (", what, ")"));
}

std::vector<double> World::sum(std::vector<double> values) {
  if (!distributed() || values.empty()) return values;
  auto t = torch::tensor(values, torch::kFloat64).to(device_);
  finish(allreduce_async(t), "all-reduce of metrics");
  t = t.cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = t[static_cast<int64_t>(i)].item<double>();
  return values;
}

void World::broadcast_parameters(torch::nn::Module& module) {
  if (!distributed()) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> all;
  for (auto& p : module.parameters()) all.push_back(p);
  for (auto& b : module.buffers()) all.push_back(b);
  for (auto& t : all) {
    ++seq_;
    std::vector<at::Tensor> v{t.data()};
    c10d::BroadcastOptions opts;
    opts.rootRank = 0;
    try {
      finish(pg_->broadcast(v, opts), "broadcast of parameters from rank 0");
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail("broadcast of parameters from rank 0", e);
    }
  }
}

void World::check_parameters_identical(torch::nn::Module& module, const std::string& when) {
  if (!distributed()) return;
  torch::NoGradGuard no_grad;
  const auto named = module.named_parameters();
  std::vector<torch::Tensor> flat;
  for (const auto& p : named) flat.push_back(p.value().detach().reshape(-1).to(torch::kFloat64));
  auto mine = torch::cat(flat).to(device_);
  auto root = mine.clone();
  {
    ++seq_;
    std::vector<at::Tensor> v{root};
    c10d::BroadcastOptions opts;
    opts.rootRank = 0;
    finish(pg_->broadcast(v, opts), "parameter check");
  }
  std::string first_bad;
  int64_t off = 0;
  for (const auto& p : named) {
    const int64_t n = p.value().numel();
    if (first_bad.empty() && !torch::equal(mine.narrow(0, off, n), root.narrow(0, off, n)))
      first_bad = p.key();
    off += n;
  }
  auto bad = sum({first_bad.empty() ? 0.0 : 1.0})[0];
  if (bad == 0) return;
  throw Error(str("rank ", rank(), ": parameters differ across ranks ", when, " (", bad,
                  " rank(s) disagree with rank 0",
                  first_bad.empty() ? "" : str("; here first at ", first_bad),
                  "): the ranks are not running the same model or data-parallel is broken"));
}

}  // namespace herd::dist
