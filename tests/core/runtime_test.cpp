// runtime_init: LibTorch's and OpenBLAS's thread counts follow the one `threads` setting.
#include <catch2/catch.hpp>

#include <filesystem>

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

TEST_CASE("the programs load OpenBLAS's OpenMP build where the build found it, and name their BLAS",
          "[runtime][cli]") {
  // The peak cache is keyed by the kernels' name (peak_flops.h), so it must follow the environment.
  vcycle::test::ScopedEnv pinned("OPENBLAS_CORETYPE", "Haswell");
  const std::string threading = vcycle::openblas_threading();
  REQUIRE(!threading.empty());
  CHECK(vcycle::blas_description() == "OpenBLAS Haswell, " + threading + " (core from OPENBLAS_CORETYPE)");
  // This binary is linked as the program is (CMakeLists.txt, vcycle_use_openmp_blas).
  const std::string openmp_dir = VCYCLE_OPENMP_BLAS_DIR;
  INFO("OpenMP build found by the build: '" << openmp_dir << "'");
  if (!openmp_dir.empty()) CHECK(threading == "OpenMP");
  {
    const auto r = vcycle::test::run_cli({"--version"});
    REQUIRE(r.exit_code == 0);
    INFO(r.output);
    CHECK(r.output.find("OpenBLAS Haswell, " + threading + " (core from OPENBLAS_CORETYPE))") != std::string::npos);
  }
  if (!openmp_dir.empty()) {
    // The README's way to compare the two builds: the pthreads build preloaded takes libblas.so.3's
    // place (tools/install-deps.sh installs both).
    const std::string pthreads = std::filesystem::path(openmp_dir).parent_path() / "openblas-pthread" / "libblas.so.3";
    REQUIRE(std::filesystem::exists(pthreads));
    vcycle::test::ScopedEnv preload("LD_PRELOAD", pthreads);
    const auto r = vcycle::test::run_cli({"--version"});
    REQUIRE(r.exit_code == 0);
    INFO(r.output);
    CHECK(r.output.find("OpenBLAS Haswell, pthreads (core") != std::string::npos);
  }
}
