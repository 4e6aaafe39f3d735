// Per-step metrics (JSON lines in the run directory) and the progress line.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace herd {

class MetricsWriter {
 public:
  // Appends: a resumed run continues the file. Lines of steps after `keep_through_step` (the
  // step resumed from; 0 for a fresh start) are dropped first, as those steps are redone, so
  // no step appears twice. Negative: keep every line.
  MetricsWriter(const std::string& path, const std::string& unit = "tok",
                int64_t keep_through_step = -1);
  // `extra`: further train metrics of the step, e.g. {"mlm_acc", 0.31}. Units are tokens for
  // text and images for image tasks (keys tokens_per_s/tokens or images_per_s/images).
  void step(int64_t step, double loss, double lr, double grad_norm, double units_per_s,
            int64_t units, const std::vector<std::pair<std::string, double>>& extra = {});
  // {"step": s, "val_loss": ..., "val_<metric>": ...} for each evaluation metric.
  void eval(int64_t step, const std::vector<std::pair<std::string, double>>& results);

 private:
  void flush();  // throws when the line could not be written (full disk)

  std::string path_;
  std::ofstream out_;
  std::string units_;  // "tokens" or "images"
};

// Throughput and ETA over the steps this process ran.
class ProgressClock {
 public:
  explicit ProgressClock(int64_t steps_to_run, std::string unit = "tok");
  void tick(int64_t tokens);
  double tokens_per_second() const;
  // "step 40/200 | loss 4.1234 | lr 3.00e-04 | 12.3k tok/s | eta 1m05s"
  std::string progress_line(int64_t step, int64_t total, double loss, double lr) const;

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
  int64_t steps_to_run_, steps_ = 0, tokens_ = 0;
  std::string unit_;
};

std::string format_duration(double seconds);

}  // namespace herd
