#include "train/run_summary.h"

#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "core/log.h"
#include "models/gpt.h"
#include "train/metrics.h"

namespace herd {
namespace {

// The train set in throughput units, from the data summary's leading count: "N train tokens",
// "N train images" (already units) or "N labelled train examples" (rows of units_per_row).
double train_units(const std::string& summary, int64_t units_per_row) {
  char* end = nullptr;
  const double n = std::strtod(summary.c_str(), &end);
  if (end == summary.c_str() || n <= 0) return 0;
  const bool rows = std::string(end).rfind(" labelled", 0) == 0;
  return rows ? n * static_cast<double>(units_per_row) : n;
}

}  // namespace

std::string run_summary(const Config& cfg, const RunShape& s) {
  std::ostringstream o;
  const auto plan = layer_plan(cfg.model);
  o << "plan (" << cfg.model.stack << ", " << plan.size() << " layers):";
  for (size_t i = 0; i < plan.size(); ++i) o << (i ? ", " : " ") << i << " " << plan[i];
  const bool images = s.unit == "img";
  const int64_t per_row = images ? 1 : cfg.seq_len();
  o << "\nparameters " << s.parameters << " (" << std::fixed << std::setprecision(2)
    << s.parameters / 1e6 << "M); " << s.units_per_step << (images ? " images" : " tokens")
    << " per step (" << cfg.train.batch_size << " x " << per_row << ", micro-batch "
    << cfg.micro_batch() << ")";
  o << "\ndata: " << s.data_summary;
  const double units = train_units(s.data_summary, per_row);
  if (units > 0)
    o << "; " << s.steps_to_run << " steps cover " << std::setprecision(2)
      << static_cast<double>(s.units_per_step) * static_cast<double>(s.steps_to_run) / units
      << " epochs";
  return o.str();
}

void log_run_summary(const Config& cfg, const RunShape& shape) {
  std::istringstream lines(run_summary(cfg, shape));
  for (std::string line; std::getline(lines, line);) log::info(line);
}

std::string time_estimate(double first_step_seconds, int64_t remaining_steps) {
  std::ostringstream o;
  o << "first step " << std::fixed << std::setprecision(2) << first_step_seconds << "s: about "
    << format_duration(first_step_seconds * static_cast<double>(remaining_steps))
    << " for the remaining " << remaining_steps << " steps";
  return o.str();
}

}  // namespace herd
