// parallel_chunks (src/core/parallel_chunks.cpp), the fused kernels' parallel loop: every index
// runs exactly once, on more than one thread when more are set, and nested calls finish.

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

#include "vcycle/core/parallel_chunks.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("parallel_chunks runs every index once, in chunks on several threads", "[models][parallel]") {
  const int saved = at::get_num_threads();
  at::set_num_threads(3);
  for (int64_t n : {0, 1, 2, 7, 100}) {
    std::vector<std::atomic<int>> hits(n);
    std::mutex mutex;
    std::set<std::thread::id> threads;
    int calls = 0;
    std::atomic<bool> bad_range{false};  // checked afterwards: Catch's macros are not for pool threads
    parallel_chunks(n, [&](int64_t begin, int64_t end) {
      if (!(0 <= begin && begin < end && end <= n)) {
        bad_range = true;
        return;
      }
      for (int64_t i = begin; i < end; ++i) hits[i]++;
      // Long enough for the pool's threads to take their chunks.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::lock_guard<std::mutex> lock(mutex);
      threads.insert(std::this_thread::get_id());
      ++calls;
    });
    INFO("n " << n);
    CHECK_FALSE(bad_range);
    for (int64_t i = 0; i < n; ++i) CHECK(hits[i] == 1);
    CHECK(calls == std::min<int64_t>(n, 3));
    if (n >= 3) CHECK(threads.size() > 1);
  }
  // Called from inside a chunk (as a kernel inside another's loop would be): runs there, finishes.
  std::atomic<int> inner{0}, outer{0};
  parallel_chunks(4, [&](int64_t, int64_t) {
    ++outer;
    parallel_chunks(5, [&](int64_t b, int64_t e) { inner += e - b; });
  });
  CHECK(outer == 2);  // chunks of ceil(4 / 3) = 2
  CHECK(inner == 5 * outer);
  at::set_num_threads(saved);
}
