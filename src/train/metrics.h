// Per-step metrics (JSON lines in the run directory) and the progress line.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace herd {

class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& path);  // appends (resumed runs continue the file)
  void step(int64_t step, double loss, double lr, double grad_norm, double tokens_per_s,
            int64_t tokens);
  void eval(int64_t step, double val_loss);

 private:
  std::ofstream out_;
};

// Throughput and ETA over the steps this process ran.
class ProgressClock {
 public:
  explicit ProgressClock(int64_t steps_to_run);
  void tick(int64_t tokens);
  double tokens_per_second() const;
  // "step 40/200 | loss 4.1234 | lr 3.00e-04 | 12.3k tok/s | eta 1m05s"
  std::string progress_line(int64_t step, int64_t total, double loss, double lr) const;

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
  int64_t steps_to_run_, steps_ = 0, tokens_ = 0;
};

std::string format_duration(double seconds);

}  // namespace herd
