#include "train/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace herd {
namespace {

constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGUSR1};
std::atomic<int> g_requested{0};
std::atomic<int64_t> g_first_ns{0};  // CLOCK_MONOTONIC of the first request
// A copy of the same request arriving this soon (Ctrl-C reaches the launcher's ranks both
// directly and forwarded; SLURM signals every process of a step) is not a second signal.
constexpr int64_t kDuplicateNs = 1'000'000'000;

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
std::atomic<bool> g_installed{false};

void write_stderr(const char* s) {
  ssize_t unused = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)unused;
}

// Async-signal-safe: atomics, clock_gettime(), write() and _exit() only.
void on_signal(int sig) {
  int expected = 0;
  if (g_requested.compare_exchange_strong(expected, sig)) {
    g_first_ns = now_ns();
    write_stderr(
        "herd: stop requested; finishing this step, then a checkpoint (signal again to "
        "abort at once)\n");
    return;
  }
  if (now_ns() - g_first_ns.load() < kDuplicateNs) return;
  write_stderr("herd: second signal: aborting without a checkpoint\n");
  ::_exit(128 + sig);
}

}  // namespace

void install_stop_handlers() {
  if (g_installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : kStopSignals) sigaction(s, &sa, nullptr);
}

void remove_stop_handlers() {
  if (!g_installed.exchange(false)) return;
  for (int s : kStopSignals) signal(s, SIG_DFL);
}

int stop_requested() {
  return g_requested.load();
}

void clear_stop_request() {
  g_requested = 0;
  g_first_ns = 0;
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "signal " + std::to_string(sig);
  }
}

}  // namespace herd
