// What `herd train` prints before step 1 (the plan, the size of the run against its data) and
// after the first timed step (the estimated time of the rest).
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"

namespace herd {

struct RunShape {
  int64_t parameters = 0;
  int64_t units_per_step = 0;  // tokens (images for image tasks) of one optimizer step
  int64_t steps_to_run = 0;    // this process: train.steps minus the resumed step
  std::string unit = "tok";    // "tok" | "img"
  std::string data_summary;    // Task::data_summary(), which starts with the train set's size
};

// Several lines: per-layer plan, parameters, tokens per step, dataset size, epochs covered.
std::string run_summary(const Config& cfg, const RunShape& shape);
// Logs run_summary line by line (info level).
void log_run_summary(const Config& cfg, const RunShape& shape);
// "first step 1.23s: about 4m05s for the remaining 199 steps".
std::string time_estimate(double first_step_seconds, int64_t remaining_steps);

}  // namespace herd
