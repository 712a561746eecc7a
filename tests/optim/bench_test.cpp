// The optimizer benchmark, hidden from the default run: `vcycle_tests "[.bench]"` (set
// OMP_WAIT_POLICY=PASSIVE in the environment first). Prints both tables with 2 threads.
#include <iostream>

#include <ATen/Parallel.h>

#include "vcycle/optim/bench.h"
#include "optim/helpers.h"

TEST_CASE("optimizer benchmark: default and GPT-2-small shapes", "[.bench]") {
  optim_test::Threads threads(2);
  vcycle::optim::bench_optimizers(std::cout, "default", 50, 5);
  std::cout << "\n";
  vcycle::optim::bench_optimizers(std::cout, "gpt2-small", 20, 3);
  const auto rows = vcycle::optim::run_optimizer_bench("default", 20, 2);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].name == "adamw");
  for (const auto& r : rows) CHECK(r.median_ms > 0);
}
