// CPU runtime tuning; see include/vcycle/core/runtime.h for why each setting exists.
#include "vcycle/core/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include <ATen/Parallel.h>

namespace vcycle {

namespace {

// OpenBLAS's own thread count, found at run time: LibTorch reaches the BLAS through libblas.so.3,
// which may be OpenBLAS (pthreads or OpenMP) or the reference BLAS, which has no threads.
using SetThreads = void (*)(int);
using GetThreads = int (*)();
using GetCoreName = char* (*)();

}  // namespace

int blas_threads() {
  const auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get == nullptr ? 0 : get();
}

std::string openblas_core() {
  const auto get = reinterpret_cast<GetCoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = get == nullptr ? nullptr : get();
  return name == nullptr ? "" : name;
}

std::string blas_description() {
  const std::string core = openblas_core();
  if (core.empty()) return "not OpenBLAS";
  return "OpenBLAS " + core + (std::getenv("OPENBLAS_CORETYPE") != nullptr ? " (OPENBLAS_CORETYPE)" : "");
}

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void runtime_init(int threads) {
  // Large activations are freed and reallocated every step; keeping them out of mmap and
  // untrimmed avoids page-fault storms (measured 1.5x on the default model).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const int n = threads > 0 ? threads : hardware_threads();
  at::set_num_threads(n);
  // at::set_num_threads does not reach OpenBLAS's pthreads pool, which starts with one thread per
  // core: a `threads: 1` run then multiplied matrices on every core, and OpenBLAS's idle workers
  // spin (sched_yield) after each product against the OpenMP threads of the element-wise ops.
  if (const auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
}

void ensure_omp_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: carry on with the default policy
}

}  // namespace vcycle
