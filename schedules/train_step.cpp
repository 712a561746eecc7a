// One optimizer step; see include/vcycle/schedules/train_step.h.
#include "vcycle/schedules/train_step.h"

#include <algorithm>
#include <limits>

#include <torch/nn/utils/clip_grad.h>

#include "vcycle/optim/registry.h"

namespace vcycle {

namespace {

// One rank's part of a step's global batch (the whole batch for one process). The global batch is
// micro_count micro-batches of micro_rows rows, in order: rows [m·micro_rows, (m+1)·micro_rows) are
// micro-batch m. Rank r of W takes the contiguous rows [r·G/W, (r+1)·G/W) of the
// G = micro_count·micro_rows rows, as pieces that never cross a micro-batch (so a piece holds at most
// micro_rows rows: the memory of one micro-batch).
struct BatchPiece {
  int64_t micro;   // which micro-batch
  int64_t lo, hi;  // rows [lo, hi) of it
};

std::vector<BatchPiece> batch_pieces(int64_t micro_count, int64_t micro_rows, int rank, int world) {
  const int64_t share = micro_count * micro_rows / world;
  const int64_t first = rank * share, last = first + share;
  std::vector<BatchPiece> out;
  for (int64_t m = first / micro_rows; m < micro_count && m * micro_rows < last; ++m) {
    out.push_back({m, std::max(first, m * micro_rows) - m * micro_rows, std::min(last, (m + 1) * micro_rows) - m * micro_rows});
  }
  return out;
}

Batch slice_rows(const Batch& b, int64_t lo, int64_t hi, int64_t rows) {
  return Batch{b.input.narrow(0, lo, hi - lo), b.target.narrow(0, lo, hi - lo), b.tokens * (hi - lo) / rows};
}

// Forward and backward of this rank's pieces of the step's batch, accumulating into the grads.
// Returns this rank's share of the mean loss and its tokens.
StepResult backward_pieces(const TrainingContext& ctx, const StepSpec& spec) {
  const int64_t micro_count = spec.micro_count;
  const int64_t micro_rows = spec.micro_rows;
  StepResult r;
  for (const BatchPiece& piece : batch_pieces(micro_count, micro_rows, ctx.dist.rank(), ctx.dist.world())) {
    Batch batch = ctx.batches.train_batch(spec.global_step, micro_rows, piece.micro, micro_count);
    const int64_t rows = piece.hi - piece.lo;
    if (rows != micro_rows) batch = slice_rows(batch, piece.lo, piece.hi, micro_rows);
    batch.input = batch.input.to(ctx.device);
    batch.target = batch.target.to(ctx.device);
    torch::Tensor loss;
    {
      AutocastGuard autocast(ctx.precision, ctx.device);
      loss = ctx.adapter.loss(ctx.module, batch);
    }
    torch::Tensor scaled = rows == micro_rows ? loss : loss * (static_cast<double>(rows) / static_cast<double>(micro_rows));
    (micro_count == 1 ? scaled : scaled / static_cast<double>(micro_count)).backward();
    r.loss += loss.item<double>() * (static_cast<double>(rows) / static_cast<double>(micro_rows)) /
              static_cast<double>(micro_count);
    r.tokens += static_cast<double>(batch.tokens);
  }
  return r;
}

// Data-parallel: the global batch's gradient, loss and tokens on every rank (sums over the ranks).
void all_reduce(const TrainingContext& ctx, const std::vector<torch::Tensor>& params, const std::string& where,
                StepResult& r) {
  std::vector<torch::Tensor> grads;
  for (auto p : params) {  // a handle: a rank without a gradient for p contributes zeros
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  ctx.dist.all_reduce_sum(grads, "gradients " + where, ctx.bucket_bytes);
  const auto sums = ctx.dist.all_reduce_sum(std::vector<double>{r.loss, r.tokens}, "the loss " + where);
  r.loss = sums[0];
  r.tokens = sums[1];
}

}  // namespace

StepResult train_step(const TrainingContext& ctx, torch::optim::Optimizer& optimizer,
                      const std::vector<torch::Tensor>& params, const StepSpec& spec) {
  optim::set_learning_rate(optimizer, spec.lr);
  optim::clear_grads(optimizer);
  StepResult r = backward_pieces(ctx, spec);
  if (ctx.dist.distributed()) all_reduce(ctx, params, spec.where, r);
  const double max_norm = spec.max_grad_norm > 0 ? spec.max_grad_norm : std::numeric_limits<double>::infinity();
  r.grad_norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
  if (r.finite()) optimizer.step();
  return r;
}

}  // namespace vcycle
