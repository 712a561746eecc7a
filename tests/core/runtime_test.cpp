// runtime_init: LibTorch's and OpenBLAS's thread counts follow the one `threads` setting.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>

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
