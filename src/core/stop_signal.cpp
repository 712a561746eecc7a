// Clean stops on signals; see include/vcycle/core/stop_signal.h.
#include "vcycle/core/stop_signal.h"

#include <signal.h>

namespace vcycle {

namespace {

volatile sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) {
  if (g_stop_signal != 0) {
    // The second signal: no more waiting. The default action ends the process by this signal.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_stop_signal = sig;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESTART;  // reads and writes in progress carry on; the loop looks at the flag
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

int stop_requested() { return g_stop_signal; }

}  // namespace vcycle
