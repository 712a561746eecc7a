// BERT's masked-language-model batches; see include/vcycle/models/bert/mlm_data.h.
#include "vcycle/models/bert/mlm_data.h"

#include <algorithm>
#include <random>

#include "vcycle/models/bert/bert.h"

namespace vcycle {

namespace {

// Validation streams live far above any training step, so they never share a generator with one.
constexpr uint64_t kValidStream = uint64_t{1} << 62;

// A generator that depends only on (seed, stream, row).
std::mt19937_64 row_rng(uint64_t seed, uint64_t stream, uint64_t row) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(stream),
                    static_cast<uint32_t>(stream >> 32), static_cast<uint32_t>(row), static_cast<uint32_t>(row >> 32),
                    0x3a5cu};
  return std::mt19937_64(seq);
}

// Uniform in [0, 1) from the top 53 bits: the same on every standard library (std's distributions are
// implementation-defined, and the masks must not change with the toolchain).
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

Batch mlm_mask(const torch::Tensor& tokens, int64_t mask_id, int64_t token_vocab, uint64_t seed, uint64_t stream,
               int64_t first_row, const MlmMasking& masking) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.scalar_type() == torch::kLong, "mlm_mask: tokens must be (batch, time) int64, got ",
              tokens.sizes(), " ", tokens.scalar_type());
  TORCH_CHECK(mask_id >= token_vocab && token_vocab >= 1, "mlm_mask: mask_id ", mask_id,
              " must not be an ordinary token id (token_vocab ", token_vocab, ")");
  const int64_t b = tokens.size(0), t = tokens.size(1);
  auto src = tokens.contiguous();
  auto input = src.clone();
  auto target = torch::full({b, t}, BertImpl::kIgnoreIndex, torch::kLong);
  const int64_t* in = src.data_ptr<int64_t>();
  int64_t* x = input.data_ptr<int64_t>();
  int64_t* y = target.data_ptr<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    auto rng = row_rng(seed, stream, static_cast<uint64_t>(first_row + r));
    const int64_t base = r * t;
    int64_t selected = 0;
    for (int64_t i = 0; i < t; ++i) {
      if (unit(rng) < masking.select) {
        y[base + i] = in[base + i];
        ++selected;
      }
    }
    if (selected == 0) {
      const int64_t i = std::min<int64_t>(t - 1, static_cast<int64_t>(unit(rng) * static_cast<double>(t)));
      y[base + i] = in[base + i];
    }
    for (int64_t i = 0; i < t; ++i) {
      if (y[base + i] == BertImpl::kIgnoreIndex) continue;
      const double u = unit(rng);
      if (u < masking.to_mask) {
        x[base + i] = mask_id;
      } else if (u < masking.to_mask + masking.to_random) {
        x[base + i] = std::min<int64_t>(token_vocab - 1, static_cast<int64_t>(unit(rng) * static_cast<double>(token_vocab)));
      }  // else: unchanged, but still predicted
    }
  }
  return Batch{input, target, b * t};
}

MlmBatchSource::MlmBatchSource(const std::string& train_path, const std::string& valid_path, int64_t token_vocab,
                               int64_t mask_id, int64_t batch_size, int64_t context, uint64_t seed, int64_t valid_batches)
    : windows_(train_path, valid_path, token_vocab, batch_size, context, seed, valid_batches),
      token_vocab_(token_vocab), mask_id_(mask_id), seed_(seed) {}

Batch MlmBatchSource::train_batch(int64_t global_step, int64_t batch_size, int64_t micro, int64_t micro_count) {
  const Batch w = windows_.train_batch(global_step, batch_size, micro, micro_count);
  return mlm_mask(w.input, mask_id_, token_vocab_, seed_, static_cast<uint64_t>(global_step), micro * batch_size);
}

Batch MlmBatchSource::valid_batch(int64_t index) {
  const Batch w = windows_.valid_batch(index);
  return mlm_mask(w.input, mask_id_, token_vocab_, seed_, kValidStream + static_cast<uint64_t>(index), 0);
}

}  // namespace vcycle
