// Masked-language-model batches for BERT: windows of the run's token files, masked as in BERT
// (Devlin et al. 2019, §3.1): each position is selected with probability 15%; a selected position
// becomes [MASK] 80% of the time, a uniformly random ordinary token 10%, and stays unchanged 10%.
// The target holds the original id at selected positions and BertImpl::kIgnoreIndex elsewhere, so
// the loss is taken over the selected positions only. A row with no selected position gets one (at a
// random place), so that no micro-batch has an empty loss.
//
// The masking of a row is a pure function of (seed, stream, row): training uses stream = global step
// and row = its index in the step's full batch (so micro-batches are row slices of the unsplit batch,
// as BatchSource requires, and a resumed run masks exactly as an uninterrupted one); validation batch
// i uses its own fixed stream, so the validation batches are the same at every evaluation and run.
#pragma once

#include <cstdint>
#include <string>

#include "vcycle/data/token_data.h"
#include "vcycle/models/model_adapter.h"

namespace vcycle {

struct MlmMasking {
  double select = 0.15;   // share of positions that carry the loss
  double to_mask = 0.8;   // of those: replaced by [MASK]
  double to_random = 0.1; // of those: replaced by a random ordinary token (the rest stay unchanged)
};

// Masks `tokens` ((B, T) int64 ids, all < token_vocab) for rows first_row … first_row+B−1 of
// `stream`. Returns {input with masks applied, target, B·T}. `mask_id` must be >= token_vocab.
Batch mlm_mask(const torch::Tensor& tokens, int64_t mask_id, int64_t token_vocab, uint64_t seed, uint64_t stream,
               int64_t first_row, const MlmMasking& masking = {});

// Token windows of `context` from the token files (ids < token_vocab), masked by mlm_mask.
class MlmBatchSource final : public BatchSource {
 public:
  MlmBatchSource(const std::string& train_path, const std::string& valid_path, int64_t token_vocab, int64_t mask_id,
                 int64_t batch_size, int64_t context, uint64_t seed, int64_t valid_batches);
  Batch train_batch(int64_t global_step, int64_t batch_size, int64_t micro, int64_t micro_count) override;
  int64_t valid_batch_count() const override { return windows_.valid_batch_count(); }
  Batch valid_batch(int64_t index) override;

 private:
  TokenBatchSource windows_;  // the unmasked windows (its next-token targets are not used)
  int64_t token_vocab_, mask_id_;
  uint64_t seed_;
};

}  // namespace vcycle
