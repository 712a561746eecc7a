// Splits [0, n) into at most at::get_num_threads() contiguous chunks and runs f(begin, end) on
// each, in parallel: the fused CPU kernels' at::parallel_for.
//
// at::parallel_for cannot serve here: on an OpenMP LibTorch (Debian's, and the official builds)
// it is a header template whose `#pragma omp parallel` only takes effect in code compiled with
// -fopenmp, so in vcycle's own sources it runs serially. These chunks run on LibTorch's inter-op
// pool (at::launch) and on the calling thread, which also takes any chunk no pool thread has
// started, so that a busy or small pool delays the work but never deadlocks it. f must not throw.
#pragma once

#include <cstdint>
#include <functional>

namespace vcycle {

void parallel_chunks(int64_t n, const std::function<void(int64_t begin, int64_t end)>& f);

}  // namespace vcycle
