// CPU runtime settings that make LibTorch fast on a small machine.
//
// Measured on a 2-core machine (see README "CPU speed"): OpenBLAS + passive OpenMP waiting +
// glibc malloc thresholds raise training throughput by ~2.5x over LibTorch's defaults, and
// OpenBLAS's OpenMP build instead of its pthreads build by another 1.07x (default GPT, fp32) to
// 1.26x (GPT-2 small): the pthreads build's idle workers spin in sched_yield against the OpenMP
// threads of LibTorch's element-wise ops. The build links the programs to the OpenMP build where it
// is installed (CMakeLists.txt, VCYCLE_OPENMP_BLAS). `OMP_WAIT_POLICY` is read when the OpenMP
// runtime starts, before main, so the command-line program re-executes itself once with it set
// (`ensure_runtime_env`).
#pragma once

#include <string>

namespace vcycle {

// Sets intra-op threads (<= 0: all cores), OpenBLAS's threads to the same number, and the malloc
// thresholds. Call once, early.
void runtime_init(int threads);

// OpenBLAS's thread count; 0 when LibTorch's BLAS is not OpenBLAS.
int blas_threads();

// OpenBLAS's kernel family as it names it ("Haswell", "SkylakeX"); "" when LibTorch's BLAS is not
// OpenBLAS. OpenBLAS picks it when it loads, from the CPU or from OPENBLAS_CORETYPE; on an AVX-512 CPU
// its fp32 GEMMs run 1.9x faster with an AVX-512 family than with Haswell's (README "CPU speed").
std::string openblas_core();

// How OpenBLAS runs its threads: "pthreads", "OpenMP" or "none"; "" when the BLAS is not OpenBLAS.
std::string openblas_threading();

// For logs, run_info.json and --version: "OpenBLAS SkylakeX, OpenMP", "OpenBLAS Haswell, OpenMP
// (core from OPENBLAS_CORETYPE)" when the environment chose the kernels, or "not OpenBLAS".
std::string blas_description();

// Sets OMP_WAIT_POLICY=PASSIVE where it is unset and re-executes the current program with the same
// arguments (returns only if it was set already or re-execution is impossible). Call first thing in
// main().
void ensure_runtime_env(char** argv);

// Number of hardware threads.
int hardware_threads();

}  // namespace vcycle
