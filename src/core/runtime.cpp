// CPU runtime tuning; see include/vcycle/core/runtime.h for why each setting exists.
#include "vcycle/core/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <thread>

#include <ATen/Parallel.h>

namespace vcycle {

namespace {

// An OpenBLAS function of type F, or nullptr when the BLAS has none: found at run time, since
// LibTorch reaches the BLAS through libblas.so.3, which may be OpenBLAS (pthreads or OpenMP) or the
// reference BLAS.
template <class F>
F openblas_fn(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

int blas_threads() {
  const auto get = openblas_fn<int (*)()>("openblas_get_num_threads");
  return get == nullptr ? 0 : get();
}

std::string openblas_core() {
  const auto get = openblas_fn<char* (*)()>("openblas_get_corename");
  const char* name = get == nullptr ? nullptr : get();
  return name == nullptr ? "" : name;
}

std::string openblas_threading() {
  const auto get = openblas_fn<int (*)()>("openblas_get_parallel");
  if (get == nullptr) return "";
  switch (get()) {
    case 1: return "pthreads";
    case 2: return "OpenMP";
    default: return "none";
  }
}

std::string blas_description() {
  const std::string core = openblas_core();
  if (core.empty()) return "not OpenBLAS";
  return "OpenBLAS " + core + ", " + openblas_threading() +
         (std::getenv("OPENBLAS_CORETYPE") != nullptr ? " (core from OPENBLAS_CORETYPE)" : "");
}

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void runtime_init(int threads) {
  // Large activations are freed and reallocated every step; keeping them out of mmap and the heap
  // untrimmed avoids page-fault storms (measured 1.5x on the default model). Trimming is off, not
  // merely above 1 GiB: at GPT-2 small the heap's free top passed 1 GiB after every backward and was
  // handed back and faulted in again, 285k page faults (1.1 GB) a step in bf16.
  mallopt(M_MMAP_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TRIM_THRESHOLD, -1);
  const int n = threads > 0 ? threads : hardware_threads();
  at::set_num_threads(n);
  // at::set_num_threads does not reach OpenBLAS's pthreads pool, which starts with one thread per
  // core: a `threads: 1` run then multiplied matrices on every core, and OpenBLAS's idle workers
  // spin (sched_yield) after each product against the OpenMP threads of the element-wise ops.
  if (const auto set = openblas_fn<void (*)(int)>("openblas_set_num_threads")) set(n);
}

void ensure_runtime_env(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // only returns on failure: carry on as started
}

}  // namespace vcycle
