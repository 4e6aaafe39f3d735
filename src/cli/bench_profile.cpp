#include "cli/bench_profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <ostream>
#include <vector>

#include "core/error.h"

namespace herd::cli::bench {
namespace {

namespace prof = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

struct Span {
  uint64_t start, end;
  std::string name;
};

// "torch::autograd::CppNode<herd::ops::(anonymous namespace)::LongConvFunction>" ->
// "LongConvFunction backward"; other names as they are.
std::string short_name(std::string n) {
  const std::string node = "torch::autograd::CppNode<";
  if (n.rfind(node, 0) == 0 && n.back() == '>') {
    n = n.substr(node.size(), n.size() - node.size() - 1);
    n = n.substr(n.rfind("::") == std::string::npos ? 0 : n.rfind("::") + 2) + " backward";
  }
  return n;
}

// Self time per op name: on each thread the ops nest as intervals; an op's self time is its
// duration minus that of its direct children.
std::map<std::string, uint64_t> self_times(const std::vector<prof::KinetoEvent>& events) {
  std::map<uint64_t, std::vector<Span>> by_thread;
  for (const auto& e : events) {
    if (e.deviceType() != c10::DeviceType::CPU || e.isAsync() || e.durationNs() == 0) continue;
    by_thread[e.startThreadId()].push_back({e.startNs(), e.endNs(), short_name(e.name())});
  }
  std::map<std::string, uint64_t> self;
  for (auto& [tid, spans] : by_thread) {
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.start != b.start ? a.start < b.start : a.end > b.end;
    });
    std::vector<std::pair<const Span*, uint64_t>> stack;  // span, time of its children
    auto close = [&] {
      const auto [s, children] = stack.back();
      stack.pop_back();
      const uint64_t d = s->end - s->start;
      self[s->name] += d > children ? d - children : 0;
      if (!stack.empty()) stack.back().second += d;
    };
    for (const auto& s : spans) {
      while (!stack.empty() && stack.back().first->end <= s.start) close();
      stack.push_back({&s, 0});
    }
    while (!stack.empty()) close();
  }
  return self;
}

}  // namespace

void profile_once(const std::function<void()>& body, const std::string& trace_path,
                  std::ostream& out, int top) {
  // Kineto logs a CUDA probe failure on machines without a GPU; only its errors that matter
  // (none for a CPU trace) would be worth a line. An explicit KINETO_LOG_LEVEL wins.
  setenv("KINETO_LOG_LEVEL", "4", 0);
  const std::set<ActivityType> activities{ActivityType::CPU};
  const ProfilerConfig config(ProfilerState::KINETO);
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    body();
  } catch (...) {
    prof::disableProfiler();
    throw;
  }
  const double wall_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  auto result = prof::disableProfiler();
  const auto parent = std::filesystem::path(trace_path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  result->save(trace_path);
  HERD_CHECK(std::filesystem::exists(trace_path), trace_path, ": the profiler wrote no trace");

  const auto self = self_times(result->events());
  std::vector<std::pair<std::string, uint64_t>> rows(self.begin(), self.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  char line[160];
  std::snprintf(line, sizeof line, "  %-44s %10s %7s\n", "op (self time, all threads)", "ms",
                "% wall");
  out << line;
  for (int i = 0; i < top && i < static_cast<int>(rows.size()); ++i) {
    std::snprintf(line, sizeof line, "  %-44.44s %10.2f %6.1f%%\n", rows[i].first.c_str(),
                  rows[i].second / 1e6, 100.0 * rows[i].second / wall_ns);
    out << line;
  }
  out << "  trace: " << trace_path << "\n";
}

}  // namespace herd::cli::bench
