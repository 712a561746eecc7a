// Stopping a run cleanly on SIGINT / SIGTERM / SIGHUP.
//
//   install_stop_handlers();          // by the command, before training
//   if (int sig = stop_requested()) { checkpoint(); throw StopRequested(..., sig); }  // between steps
//
// The first such signal only records itself: the training loop finishes its step, writes a checkpoint
// and exits 128 + signal. A second signal ends the process at once (the default action), for a user
// who cannot wait for the step. Without install_stop_handlers() the signals keep their default action.
#pragma once

namespace vcycle {

void install_stop_handlers();
// The first stop signal received since install_stop_handlers(), or 0.
int stop_requested();

}  // namespace vcycle
