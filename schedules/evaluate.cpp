// The validation loss; see include/vcycle/schedules/evaluate.h.
#include "vcycle/schedules/evaluate.h"

#include <vector>

namespace vcycle {

EvalResult evaluate(const TrainingContext& ctx, const std::string& what) {
  torch::NoGradGuard no_grad;
  ctx.module.eval();
  double sum = 0;
  EvalResult r;
  const int64_t n = ctx.batches.valid_batch_count();
  for (int64_t i = ctx.dist.rank(); i < n; i += ctx.dist.world()) {  // data-parallel: every world-th batch
    Batch b = ctx.batches.valid_batch(i);
    AutocastGuard autocast(ctx.precision, ctx.device);
    std::map<std::string, double> metrics;
    sum += ctx.adapter.eval_loss(ctx.module, Batch{b.input.to(ctx.device), b.target.to(ctx.device), b.tokens}, metrics)
               .item<double>();
    for (const auto& [name, value] : metrics) r.metrics[name] += value;
    r.tokens += static_cast<double>(b.tokens);
  }
  ctx.module.train();
  if (ctx.dist.distributed()) {
    const auto sums = ctx.dist.all_reduce_sum(std::vector<double>{sum, r.tokens}, what);
    sum = sums[0];
    r.tokens = sums[1];
  }
  r.loss = sum / static_cast<double>(n);
  for (auto& [name, total] : r.metrics) total /= static_cast<double>(n);
  return r;
}

}  // namespace vcycle
