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

TEST_CASE("openblas_core names the kernels OPENBLAS_CORETYPE asks for, and the program reports them", "[runtime][cli]") {
  // The peak cache is keyed by this name (peak_flops.h), so it must follow the environment.
  vcycle::test::ScopedEnv pinned("OPENBLAS_CORETYPE", "Haswell");
  const auto r = vcycle::test::run_cli({"--version"});
  REQUIRE(r.exit_code == 0);
  INFO(r.output);
  CHECK(r.output.find("OpenBLAS Haswell (OPENBLAS_CORETYPE))") != std::string::npos);
  CHECK(!vcycle::openblas_core().empty());
  CHECK(vcycle::blas_description().rfind("OpenBLAS " + vcycle::openblas_core(), 0) == 0);
}
