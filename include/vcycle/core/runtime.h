// CPU runtime settings that make LibTorch fast on a small machine.
//
// Measured on a 2-core machine (see README "Performance"): OpenBLAS + passive OpenMP waiting +
// glibc malloc thresholds raise training throughput by ~2.5x over LibTorch's defaults.
// `OMP_WAIT_POLICY` is read by the OpenMP runtime when the process starts, so the command-line
// program re-executes itself once with it set (`ensure_omp_wait_policy`).
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

// For logs and run_info.json: "OpenBLAS SkylakeX", "OpenBLAS Haswell (OPENBLAS_CORETYPE)" when the
// environment chose it, or "not OpenBLAS".
std::string blas_description();

// If OMP_WAIT_POLICY is unset, sets it to PASSIVE and re-executes the current program with the
// same arguments (returns only if re-execution is impossible). Call first thing in main().
void ensure_omp_wait_policy(char** argv);

// Number of hardware threads.
int hardware_threads();

}  // namespace vcycle
