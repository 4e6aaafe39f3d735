// `herd train CONFIG --nproc-per-node N`: starts N copies of this herd (one per rank) with
// torchrun's environment on a free local port, supervises them, and stops them all as soon as
// one fails. SIGTERM, SIGINT and SIGUSR1 sent to the launcher are forwarded to every rank (which
// then stop together after a checkpoint); the ranks die with the launcher (PR_SET_PDEATHSIG),
// so a launcher killed with -9 leaves no orphans.
#pragma once

#include <string>
#include <vector>

namespace herd::dist {

struct LaunchOptions {
  int nproc = 1;
  std::vector<std::string> args;  // the worker's argv[1..] (without --nproc-per-node)
  double grace_s = 5;             // after SIGTERM, SIGKILL the ranks still running
};

// Runs the workers to the end. When one fails, stops the others (SIGTERM, then SIGKILL after
// grace_s) and throws "rank R (pid P) exited with status S" (or "was killed by signal N").
// Ranks > 0 have their output lines prefixed with "[rank R] " on stderr. Returns 0, or
// `stopped_status` when the ranks exited with it (stopped on a signal after a checkpoint).
int launch(const LaunchOptions& options, int stopped_status = 75);

// launch() of this very command line minus its --nproc-per-node, on `nproc` ranks.
int launch_this_command(int nproc, int stopped_status = 75);

// This process's argv[1..] from /proc/self/cmdline, minus `--flag V` / `--flag=V`.
std::vector<std::string> own_args_without(const std::string& flag);

// A TCP port nothing listens on now (bound to port 0, then released).
int free_port();

}  // namespace herd::dist
