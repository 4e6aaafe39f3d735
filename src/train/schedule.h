// Learning-rate schedule: linear warmup, then cosine / linear decay to min_lr_ratio * lr.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace herd {

// The learning rate for optimizer step `step` (0-based) of `total_steps`.
double lr_at(const OptimizerConfig& opt, const ScheduleConfig& sched, int64_t step,
             int64_t total_steps);

}  // namespace herd
