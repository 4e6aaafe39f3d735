// Helpers of the multi-process tests (test_dist.cpp, test_dist_zero.cpp): a tiny float64
// GPT config, the losses and evaluation figures a run wrote, weights compared across runs.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <string>

#include "core/error.h"
#include "fixtures.h"

namespace herd::test {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A tiny fp64 GPT on the fortunes fixture with gradient accumulation (8 rows in micro-batches
// of 2: 4 micro-steps on 1 rank, 2 per rank on 2 ranks).
inline std::string write_config(const std::string& dir, int64_t steps,
                                const std::string& extra = "") {
  const std::string path = dir + "/dist.yaml";
  test::write_text(path,
                   str("model:\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 16\n",
                       "data:\n  dir: ", test::fortunes_dataset(), "\n",
                       "optimizer:\n  lr: 3.0e-3\nschedule:\n  warmup_steps: 2\n",
                       "train:\n  steps: ", steps, "\n  batch_size: 8\n  micro_batch_size: 2\n",
                       "  precision: fp64\n  device: cpu\n  eval_batches: 3\n  sample_tokens: 0\n",
                       "  threads: 1\n  dist_timeout_s: 20\n  bucket_cap_mb: 0.01\n", extra));
  return path;
}

// Train losses in metrics.jsonl, by step (a resumed run appends to the same file).
inline std::map<int64_t, double> metric_losses(const std::string& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  static const std::regex re(R"(\{"step":(\d+),"loss":([^,]+),)");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, re)) out[std::stoll(m[1])] = std::stod(m[2]);
  return out;
}

// The evaluation figures of the last eval line in metrics.jsonl ("val_loss" -> ...).
inline std::map<std::string, double> last_eval(const std::string& run_dir) {
  std::map<std::string, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  static const std::regex re(R"re("(val_[a-z0-9_.]+)":([^,}]+))re");
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"val_") == std::string::npos) continue;
    out.clear();
    for (std::sregex_iterator it(line.begin(), line.end(), re), end; it != end; ++it)
      out[(*it)[1]] = std::stod((*it)[2]);
  }
  return out;
}

// The "name value" lines a dist-selftest rank wrote.
inline std::map<std::string, double> read_values(const std::string& path) {
  std::map<std::string, double> v;
  std::ifstream in(path);
  std::string k;
  double x;
  while (in >> k >> x) v[k] = x;
  return v;
}

inline void expect_same_weights(const std::string& a_ck, const std::string& b_ck) {
  auto a = test::weights_of(a_ck), b = test::weights_of(b_ck);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_EQ(t.scalar_type(), torch::kFloat64) << name;
    EXPECT_LT((t - b.at(name)).abs().max().item<double>(), 1e-12) << name;
  }
}

}  // namespace herd::test
