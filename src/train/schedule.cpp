#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace herd {

double lr_at(const OptimizerConfig& opt, const ScheduleConfig& sched, int64_t step,
             int64_t total_steps) {
  if (step < sched.warmup_steps)
    return opt.lr * static_cast<double>(step + 1) / static_cast<double>(sched.warmup_steps);
  if (sched.decay == "constant") return opt.lr;
  const double span = std::max<int64_t>(1, total_steps - sched.warmup_steps);
  const double progress =
      std::clamp(static_cast<double>(step - sched.warmup_steps) / span, 0.0, 1.0);
  const double min_lr = opt.lr * sched.min_lr_ratio;
  const double shape =
      sched.decay == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return min_lr + (opt.lr - min_lr) * shape;
}

}  // namespace herd
