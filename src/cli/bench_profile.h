// `--profile DIR` of the bench subcommands: one run of a body under torch's (Kineto) profiler,
// the chrome trace saved for chrome://tracing or Perfetto, and the ops that took the most
// self time (time not spent in an op nested inside them) printed as a short table.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>

namespace herd::cli::bench {

// Runs body once with the CPU profiler on, writes the trace to trace_path (its folder is
// created) and prints the `top` ops by self time, with their share of the run's wall time.
void profile_once(const std::function<void()>& body, const std::string& trace_path,
                  std::ostream& out, int top = 12);

}  // namespace herd::cli::bench
