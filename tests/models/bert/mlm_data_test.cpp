// BERT's masking: the 80/10/10 proportions, determinism per (seed, step), micro-batches as row slices
// of the unsplit batch, fixed validation batches, and targets only at the selected positions.

#include <torch/torch.h>

#include "test_util.h"
#include "vcycle/models/bert/mlm_data.h"
#include "vcycle/models/bert/bert.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using torch::indexing::Slice;

TEST_CASE("MLM masking selects 15% and replaces 80/10/10", "[data][mlm]") {
  torch::manual_seed(0);
  const int64_t vocab = 256, mask = 256;
  const auto tokens = torch::randint(0, vocab, {256, 128}, torch::kLong);
  const Batch b = mlm_mask(tokens, mask, vocab, /*seed=*/7, /*stream=*/3, /*first_row=*/0);
  REQUIRE(b.input.sizes() == tokens.sizes());
  REQUIRE(b.target.sizes() == tokens.sizes());
  CHECK(b.tokens == 256 * 128);
  const auto selected = b.target != BertImpl::kIgnoreIndex;
  const double n = static_cast<double>(tokens.numel()), n_sel = selected.sum().item<double>();
  // Targets are the original ids where selected; elsewhere the input is untouched.
  CHECK(torch::equal(b.target.masked_select(selected), tokens.masked_select(selected)));
  CHECK(torch::equal(b.input.masked_select(~selected), tokens.masked_select(~selected)));
  // Tolerances: ≥ 4 standard deviations of a binomial share (n = 32768 positions, ≈ 4900 selected),
  // so the test fails for a wrong rate, not by chance.
  CHECK(n_sel / n == Approx(0.15).margin(0.01));
  const auto in_sel = b.input.masked_select(selected), orig_sel = tokens.masked_select(selected);
  const double masked = in_sel.eq(mask).sum().item<double>() / n_sel;
  const double unchanged = in_sel.eq(orig_sel).sum().item<double>() / n_sel;
  const double random = 1.0 - masked - unchanged;
  CHECK(masked == Approx(0.8).margin(0.025));
  CHECK(random == Approx(0.1 * 255.0 / 256.0).margin(0.02));   // a random token may equal the original
  CHECK(unchanged == Approx(0.1 + 0.1 / 256.0).margin(0.02));
  CHECK(in_sel.lt(vocab).logical_or(in_sel.eq(mask)).all().item<bool>());  // random tokens are ordinary ids
}

TEST_CASE("MLM masking is a pure function of (seed, stream, row)", "[data][mlm]") {
  torch::manual_seed(1);
  const auto tokens = torch::randint(0, 256, {8, 32}, torch::kLong);
  const Batch a = mlm_mask(tokens, 256, 256, 5, 10, 0), again = mlm_mask(tokens, 256, 256, 5, 10, 0);
  CHECK(torch::equal(a.input, again.input));
  CHECK(torch::equal(a.target, again.target));
  CHECK_FALSE(torch::equal(mlm_mask(tokens, 256, 256, 5, 11, 0).target, a.target));  // another step
  CHECK_FALSE(torch::equal(mlm_mask(tokens, 256, 256, 6, 10, 0).target, a.target));  // another seed
  // Rows 4…7 masked on their own equal the same rows of the whole batch.
  const Batch tail = mlm_mask(tokens.index({Slice(4, 8)}), 256, 256, 5, 10, 4);
  CHECK(torch::equal(tail.input, a.input.index({Slice(4, 8)})));
  CHECK(torch::equal(tail.target, a.target.index({Slice(4, 8)})));
  // Every row carries at least one target, even a row of a single position.
  const Batch one = mlm_mask(torch::zeros({50, 1}, torch::kLong), 256, 256, 5, 10, 0);
  CHECK((one.target != BertImpl::kIgnoreIndex).all().item<bool>());
  CHECK_THROWS_WITH(mlm_mask(tokens, 255, 256, 5, 10, 0), Catch::Contains("mask_id 255"));
}

TEST_CASE("MLM batches: same per step, micro-batches are row slices, validation fixed", "[data][mlm]") {
  test::TempDir dir("mlm");
  test::prepare_fixture_corpus(dir.str());
  auto make = [&] { return MlmBatchSource(dir.str("train.bin"), dir.str("valid.bin"), 256, 256, 4, 16, 42, 3); };
  MlmBatchSource a = make(), b = make();
  const Batch full = a.train_batch(7, 4, 0, 1);
  CHECK(full.input.sizes() == torch::IntArrayRef({4, 16}));
  CHECK(torch::equal(full.input, b.train_batch(7, 4, 0, 1).input));   // a fresh source (a resumed run)
  CHECK(torch::equal(full.target, b.train_batch(7, 4, 0, 1).target));
  CHECK_FALSE(torch::equal(full.target, a.train_batch(8, 4, 0, 1).target));
  const Batch second = a.train_batch(7, 2, 1, 2);  // micro-batch 1 of 2
  CHECK(torch::equal(second.input, full.input.index({Slice(2, 4)})));
  CHECK(torch::equal(second.target, full.target.index({Slice(2, 4)})));
  CHECK(a.valid_batch_count() == 3);
  CHECK(torch::equal(a.valid_batch(1).input, b.valid_batch(1).input));
  CHECK(torch::equal(a.valid_batch(1).target, a.valid_batch(1).target));
  CHECK((a.valid_batch(0).input == 256).any().item<bool>());  // validation is masked too
}
