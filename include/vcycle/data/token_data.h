// Token data: `prepare` tokenizes a text once into binary token files; training memory-maps them.
//
// Files (in the output directory of `prepare`):
//   train.bin, valid.bin — little-endian uint16 token ids
//   meta.json            — tokenizer, vocab size, its model file (SentencePiece: tokenizer.model,
//                          beside the token files), source and its hash (text_fnv1a64), token counts,
//                          validation bytes, split settings; a run checks it against its config
//                          (config/token_meta.h)
// The split is by contiguous chunks of the text (so validation text is never seen in training),
// chosen with a seeded shuffle: the same text and seed always give the same split.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vcycle/data/batch.h"
#include "vcycle/data/tokenizer.h"

namespace vcycle {

struct PrepareOptions {
  double valid_fraction = 0.05;  // share of chunks held out (>= this fraction of the text)
  int64_t chunk_bytes = 16384;   // split granularity in bytes of text
  uint64_t seed = 1234;          // which chunks are held out
};

struct PrepareResult {
  std::string train_path, valid_path, meta_path;
  int64_t train_tokens = 0, valid_tokens = 0;
};

// Checks the text is non-empty UTF-8, tokenizes it and writes the files atomically.
PrepareResult prepare_text(const std::string& text_path, const std::string& out_dir, const Tokenizer& tokenizer,
                           const PrepareOptions& options);

// The training split of the text alone (the chunks prepare_text puts in train.bin): what a tokenizer
// is trained on, so that it never sees the validation text.
std::string training_text(const std::string& text_path, const PrepareOptions& options);

// Extracts a corpus that Debian packages ship ("austen": r-cran-janeaustenr, "kjv": bible-kjv)
// into `out_path`. Throws InputError saying which package to install if the tool is missing.
void extract_builtin_corpus(const std::string& corpus, const std::string& out_path);

// A read-only memory-mapped token file. Validates size, and that every id is < vocab.
class TokenFile {
 public:
  TokenFile(const std::string& path, int64_t vocab);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  int64_t size() const { return count_; }
  const uint16_t* data() const { return tokens_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint16_t* tokens_ = nullptr;
  int64_t count_ = 0;
  size_t bytes_ = 0;
};

// Next-token batches of (batch_size, context) windows. Training windows start at offsets drawn from
// a generator seeded by (seed, global step); validation windows are evenly spaced and fixed.
class TokenBatchSource final : public BatchSource {
 public:
  TokenBatchSource(const std::string& train_path, const std::string& valid_path, int64_t vocab, int64_t batch_size,
                   int64_t context, uint64_t seed, int64_t valid_batches);
  Batch train_batch(int64_t global_step, int64_t batch_size, int64_t micro, int64_t micro_count) override;
  int64_t valid_batch_count() const override { return valid_batches_; }
  Batch valid_batch(int64_t index) override;

 private:
  Batch window_batch(const TokenFile& file, const std::vector<int64_t>& offsets) const;
  TokenFile train_, valid_;
  int64_t batch_size_, context_;
  uint64_t seed_;
  int64_t valid_batches_;
};

}  // namespace vcycle
