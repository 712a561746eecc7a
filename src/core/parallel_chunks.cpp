// Chunks of a loop on LibTorch's inter-op pool; see parallel_chunks.h.
#include "vcycle/core/parallel_chunks.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include <ATen/Parallel.h>

namespace vcycle {

void parallel_chunks(int64_t n, const std::function<void(int64_t begin, int64_t end)>& f) {
  if (n <= 0) return;
  const int64_t workers = std::min<int64_t>(n, at::get_num_threads());
  if (workers <= 1 || at::in_parallel_region()) {
    f(0, n);
    return;
  }
  // Shared with the launched tasks, which may start after the call has returned (then they find no
  // chunk left and touch nothing else): f is only called while a chunk is undone, so while the
  // caller is still waiting.
  struct State {
    std::atomic<int64_t> next{0}, done{0};
    std::mutex mutex;
    std::condition_variable finished;
  };
  const auto state = std::make_shared<State>();
  const int64_t chunk = (n + workers - 1) / workers, chunks = (n + chunk - 1) / chunk;
  const std::function<void(int64_t, int64_t)>* body = &f;
  auto run = [state, body, n, chunk, chunks] {
    for (int64_t c; (c = state->next.fetch_add(1)) < chunks;) {
      (*body)(c * chunk, std::min(n, (c + 1) * chunk));
      if (state->done.fetch_add(1) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(state->mutex);
        state->finished.notify_all();
      }
    }
  };
  for (int64_t w = 1; w < chunks; ++w) at::launch(run);
  run();
  std::unique_lock<std::mutex> lock(state->mutex);
  state->finished.wait(lock, [&] { return state->done.load() == chunks; });
}

}  // namespace vcycle
