// runtime_init: LibTorch's and OpenBLAS's thread counts follow the one `threads` setting.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>

#include "test_util.h"
#include "vcycle/core/runtime.h"

TEST_CASE("runtime_init sets LibTorch's and OpenBLAS's threads to the same count", "[runtime]") {
  // tools/install-deps.sh installs OpenBLAS; without it LibTorch's BLAS is the reference one and
  // every measurement in the README would be 10x off, so its absence is a failure here.
  REQUIRE(vcycle::blas_threads() > 0);
  const int before = at::get_num_threads();
  vcycle::runtime_init(2);
  CHECK(at::get_num_threads() == 2);
  CHECK(vcycle::blas_threads() == 2);
  vcycle::runtime_init(1);
  CHECK(at::get_num_threads() == 1);
  CHECK(vcycle::blas_threads() == 1);
  vcycle::runtime_init(before);
}

TEST_CASE("the program names its OpenBLAS kernels and threading, and loads OpenBLAS's OpenMP build where it can",
          "[runtime][cli]") {
  // The peak cache is keyed by the kernels' name (peak_flops.h), so it must follow the environment.
  vcycle::test::ScopedEnv pinned("OPENBLAS_CORETYPE", "Haswell");
  const std::string threading = vcycle::openblas_threading();
  REQUIRE(!threading.empty());
  CHECK(vcycle::blas_description() == "OpenBLAS Haswell, " + threading + " (core from OPENBLAS_CORETYPE)");
  {
    const auto r = vcycle::test::run_cli({"--version"});
    REQUIRE(r.exit_code == 0);
    INFO(r.output);
    // Debian's pthreads build is swapped for the OpenMP one where both are installed.
    const bool openmp = threading == "OpenMP" || !vcycle::openmp_openblas_dir().empty();
    CHECK(r.output.find(std::string("OpenBLAS Haswell, ") + (openmp ? "OpenMP" : threading) +
                        " (core from OPENBLAS_CORETYPE))") != std::string::npos);
  }
  {
    vcycle::test::ScopedEnv keep("VCYCLE_OPENBLAS_OPENMP", "0");
    const auto r = vcycle::test::run_cli({"--version"});
    REQUIRE(r.exit_code == 0);
    INFO(r.output);
    CHECK(r.output.find("OpenBLAS Haswell, " + threading + " (core") != std::string::npos);
  }
}
