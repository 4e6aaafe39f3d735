#include "train/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "data/file_util.h"

namespace herd {
namespace {

std::string num(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN/Inf
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// The step of a metrics line ({"step":N,...}), or -1.
int64_t line_step(const std::string& line) {
  static const std::string key = "{\"step\":";
  if (line.rfind(key, 0) != 0) return -1;
  return std::strtoll(line.c_str() + key.size(), nullptr, 10);
}

// Rewrites `path` (atomically) without the lines of steps after `keep`.
void drop_steps_after(const std::string& path, int64_t keep) {
  if (!data::is_regular_file(path)) return;
  std::istringstream in(data::read_file(path, "metrics file"));
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line_step(line) > keep) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) data::write_file_atomic(path, kept);
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path, const std::string& unit,
                             int64_t keep_through_step)
    : path_(path), units_(unit == "img" ? "images" : "tokens") {
  if (keep_through_step >= 0 && path != "/dev/null") drop_steps_after(path, keep_through_step);
  out_.open(path, std::ios::app);
  HERD_CHECK(out_.good(), path, ": cannot open metrics file for writing");
}

void MetricsWriter::step(int64_t step, double loss, double lr, double grad_norm, double ups,
                         int64_t units, const std::vector<std::pair<std::string, double>>& extra) {
  out_ << "{\"step\":" << step << ",\"loss\":" << num(loss) << ",\"lr\":" << num(lr)
       << ",\"grad_norm\":" << num(grad_norm) << ",\"" << units_ << "_per_s\":" << num(ups) << ",\""
       << units_ << "\":" << units;
  for (const auto& [name, v] : extra) out_ << ",\"" << name << "\":" << num(v);
  out_ << "}\n";
  flush();
}

void MetricsWriter::eval(int64_t step, const std::vector<std::pair<std::string, double>>& results) {
  out_ << "{\"step\":" << step;
  for (const auto& [name, v] : results) out_ << ",\"val_" << name << "\":" << num(v);
  out_ << "}\n";
  flush();
}

void MetricsWriter::flush() {
  out_.flush();
  HERD_CHECK(out_.good(), path_, ": write failed (disk full?)");
}

ProgressClock::ProgressClock(int64_t steps_to_run, std::string unit)
    : start_(Clock::now()), steps_to_run_(steps_to_run), unit_(std::move(unit)) {}

void ProgressClock::tick(int64_t tokens) {
  ++steps_;
  tokens_ += tokens;
}

double ProgressClock::tokens_per_second() const {
  const double s = std::chrono::duration<double>(Clock::now() - start_).count();
  return s > 0 ? tokens_ / s : 0.0;
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return str(s / 3600, "h", (s % 3600) / 60, "m");
  if (s >= 60) return str(s / 60, "m", s % 60 < 10 ? "0" : "", s % 60, "s");
  return str(s, "s");
}

std::string ProgressClock::progress_line(int64_t step, int64_t total, double loss,
                                         double lr) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double eta =
      steps_ > 0 ? elapsed / steps_ * static_cast<double>(steps_to_run_ - steps_) : 0.0;
  const double tps = tokens_per_second();
  char buf[160];
  std::snprintf(buf, sizeof buf, "step %lld/%lld | loss %.4f | lr %.2e | %.1fk %s/s | eta %s",
                static_cast<long long>(step), static_cast<long long>(total), loss, lr, tps / 1000.0,
                unit_.c_str(), format_duration(eta).c_str());
  return buf;
}

}  // namespace herd
