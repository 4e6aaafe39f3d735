// Graceful stops: SIGTERM, SIGINT and SIGUSR1 (SLURM's --signal) ask the training loop to
// finish the optimizer step it is in, write a checkpoint and exit with kExitStopped; a second
// signal (more than 1 s after the first: copies of one request arrive together) ends the
// process at once (exit 128 + signal). Data-parallel ranks agree on the stop
// step by summing their flags with the step's figures (train/step_totals.h).
#pragma once

#include <stdexcept>
#include <string>

namespace herd {

// The exit status of a run stopped by a signal after writing its checkpoint (EX_TEMPFAIL:
// "try again"; resume with --resume auto).
constexpr int kExitStopped = 75;

// Installs the handlers (idempotent). Until then the signals keep their default action.
void install_stop_handlers();
// Restores the default actions (tests).
void remove_stop_handlers();
// The signal that asked for a stop, or 0.
int stop_requested();
// Forgets a request (tests, and a new run in the same process).
void clear_stop_request();
// "SIGTERM" for 15.
std::string signal_name(int signal_number);

// Thrown by the CLI once a run stopped on a signal has checkpointed; main() turns it into
// its exit status with no further message.
struct ExitStatus : std::runtime_error {
  int code;
  ExitStatus(int c, const std::string& why) : std::runtime_error(why), code(c) {}
};

}  // namespace herd
