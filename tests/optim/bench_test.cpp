// The optimizer benchmark, hidden from the default run: `vcycle_tests "[.bench]"` (set
// OMP_WAIT_POLICY=PASSIVE in the environment first). Prints the tables for both shape sets with 2
// threads, then again with the fused CPU kernels off (the ATen path every non-CPU device takes).
#include <iostream>

#include <ATen/Parallel.h>

#include "vcycle/optim/bench.h"
// Last: glog (via c10) defines CHECK too, and Catch's must win.
#include "optim/helpers.h"

TEST_CASE("optimizer benchmark: default and GPT-2-small shapes", "[.bench]") {
  vcycle::test::ScopedThreads threads(2);
  for (bool fused : {true, false}) {
    optim_test::Fused mode(fused);
    std::cout << (fused ? "== fused CPU kernels (default)\n" : "== fused CPU kernels off: ATen path\n");
    vcycle::optim::bench_optimizers(std::cout, "default", 50, 5);
    std::cout << "\n";
    vcycle::optim::bench_optimizers(std::cout, "gpt2-small", 20, 3);
    std::cout << "\n";
  }
  const auto rows = vcycle::optim::run_optimizer_bench("default", 20, 2);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].name == "adamw");
  for (const auto& r : rows) CHECK(r.median_ms > 0);
}
