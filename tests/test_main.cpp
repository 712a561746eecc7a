// Catch2 entry point; also applies the CPU runtime settings every vcycle process uses.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "vcycle/core/runtime.h"

int main(int argc, char** argv) {
  vcycle::runtime_init(1);
  return Catch::Session().run(argc, argv);
}
