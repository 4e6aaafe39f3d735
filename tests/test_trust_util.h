// Helpers of the reliability tests (test_checkpoint_safety, test_run_safety, test_signals,
// test_bad_input): a tiny GPT config on the fortunes fixture, file and process helpers.
#pragma once

#include <sys/wait.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "config/config.h"
#include "core/error.h"
#include "fixtures.h"

namespace herd::trust {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Writes dir/tiny.yaml (a 2-layer GPT, fp32 on the CPU) and returns its path.
inline std::string tiny_yaml(const std::string& dir, int64_t steps, const std::string& extra = "") {
  const std::string path = dir + "/tiny.yaml";
  test::write_text(
      path, str("model:\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n",
                "data:\n  dir: ", test::fortunes_dataset(), "\n",
                "optimizer:\n  lr: 3.0e-3\nschedule:\n  warmup_steps: 3\n",
                "train:\n  steps: ", steps, "\n  batch_size: 8\n  micro_batch_size: 4\n",
                "  device: cpu\n  eval_batches: 2\n  sample_tokens: 0\n  threads: 1\n", extra));
  return path;
}

// Runs a shell command line; returns its exit status (128 + signal when killed).
inline int shell(const std::string& cmd) {
  const int s = std::system(cmd.c_str());
  if (WIFEXITED(s)) return WEXITSTATUS(s);
  return WIFSIGNALED(s) ? 128 + WTERMSIG(s) : 255;
}

// Waits (a guard against a hang, not a timing) until `path` exists and is not empty.
inline bool wait_for(const std::string& path, int guard_s = 300) {
  namespace fs = std::filesystem;
  for (int i = 0; i < guard_s * 20; ++i) {
    std::error_code ec;
    if (fs::exists(path, ec) && fs::file_size(path, ec) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Every file under `dir` with its size and modification time, for "nothing changed" checks.
inline std::map<std::string, std::pair<uintmax_t, int64_t>> snapshot(const std::string& dir) {
  namespace fs = std::filesystem;
  std::map<std::string, std::pair<uintmax_t, int64_t>> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      out[e.path().string()] = {
          e.file_size(), static_cast<int64_t>(e.last_write_time().time_since_epoch().count())};
  return out;
}

// The number of lines of `text` that are not empty.
inline int count_lines(const std::string& text) {
  int n = 0;
  bool in_line = false;
  for (char c : text) {
    if (c == '\n') {
      n += in_line;
      in_line = false;
    } else {
      in_line = true;
    }
  }
  return n + in_line;
}

}  // namespace herd::trust
