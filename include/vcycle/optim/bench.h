// Optimizer benchmark: step time and state memory of AdamW, CAME, LAMB and Adafactor on the
// parameter shapes of a GPT, with random gradients, in one process (so ratios to AdamW compare like
// with like). The command line runs it as `vcycle bench optim`.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace vcycle::optim {

// Named parameter shapes of a tied-embedding GPT: "gpt2-small" (12 layers, d 768, ffn 3072, vocab
// 50257, context 1024; 124M parameters) or "default" (vcycle's default model: 4 layers, d 256,
// 4 heads × 64, ffn 1024, context 128, vocab 256). Throws std::invalid_argument for other names.
std::vector<std::pair<std::string, std::vector<int64_t>>> bench_shapes(const std::string& shapes);

// One row of the benchmark.
struct BenchResult {
  std::string name;          // optimizer name as in the registry
  double median_ms = 0;      // median step time after warm-up
  double min_ms = 0;         // fastest step
  int64_t state_bytes = 0;   // optimizer state after the timed steps
};

// Times `steps` (>= 20) steps after `warmup` untimed ones for each optimizer (same random
// gradients, fp32 parameters, weight_decay 0.01 on matrices, default hyperparameters otherwise) and
// returns one result per optimizer, AdamW first. Uses the current intra-op thread count.
// On a CUDA `device` each step is timed to the end of its kernels (the device is synchronised).
std::vector<BenchResult> run_optimizer_bench(const std::string& shapes, int steps, int warmup,
                                             const std::string& device = "cpu");

// Runs run_optimizer_bench() and prints a table with ratios to AdamW to `out`; returns the rows.
std::vector<BenchResult> bench_optimizers(std::ostream& out, const std::string& shapes, int steps, int warmup,
                                          const std::string& device = "cpu");

}  // namespace vcycle::optim
