// The `herd bench` subcommands' entry points (src/cli/bench.cpp wires their flags).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace herd::cli::bench {

struct BlocksArgs {
  std::vector<std::string> mixers{"attention", "hyena", "m2", "h3", "primer"};
  std::vector<int64_t> lengths{1024, 2048, 4096, 8192, 16384};
  int64_t d_model = 768, batch = 1;
  std::string dtype = "float32", device = "cpu", json, configs_dir, profile_dir;
  int warmup = 1, iters = 3;
};
void run_blocks_bench(const BlocksArgs& a);

struct TrainArgs {
  std::string config, json, run_dir, profile_dir;
  std::vector<std::string> overrides;
  int64_t steps = 10, warmup_steps = 2, profile_steps = 3;
  int nproc = 0;  // > 0: data-parallel ranks on this machine (rank 0 reports)
};
void run_train_bench(const TrainArgs& a);

struct OpsArgs {
  std::string device = "all", json;
  std::vector<std::string> ops;  // empty: every op
  int warmup = 3, iters = 20;
};
void run_ops_bench(const OpsArgs& a);

}  // namespace herd::cli::bench
