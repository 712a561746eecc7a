// meta.json, which `vcycle prepare` writes beside the token files, read back: a run checks that its
// config reads the data with the tokenizer that made it, and that the model's vocab covers it.
//
// Token files without a meta.json (e.g. nanoGPT's train.bin / val.bin: uint16 GPT-2 ids, vocab 50257)
// are used as they are; TokenFile still checks every id against the model's vocab.
#pragma once

#include <cstdint>
#include <optional>
#include <memory>
#include <string>

#include "vcycle/config/run_config.h"
#include "vcycle/data/tokenizer.h"

namespace vcycle {

struct TokenMeta {
  std::string path;       // the meta.json read
  std::string tokenizer;  // "byte", ...
  int64_t vocab = 0;      // the tokenizer's vocab size
  std::string model_file;    // the tokenizer's model, beside meta.json ("" for none)
  int64_t valid_bytes = 0;   // text bytes behind valid.bin's tokens (0: not recorded)
  int64_t valid_tokens = 0;
  int64_t train_tokens = 0;
  int64_t source_bytes = 0;  // the whole text
};

// The meta.json in the directory of `token_file`; nullopt when there is none. InputError naming the
// file when it is not a JSON object with `tokenizer` (string) and `vocab` (integer).
std::optional<TokenMeta> read_token_meta(const std::string& token_file);

// The tokenizer that made the run's token files: the byte tokenizer, or the SentencePiece model
// named by meta.json beside data.train (default tokenizer.model). InputError when the model file is
// missing, naming it.
std::unique_ptr<Tokenizer> make_data_tokenizer(const DataConfig& data);

// Text bytes per token of a token file, for bits per byte: 1 for the byte tokenizer; else from the
// meta.json beside it (valid_bytes / valid_tokens, for valid.bin of a `vcycle prepare`); 0 when
// unknown (no meta.json, as for nanoGPT's files).
double bytes_per_token(const std::string& tokenizer, const std::string& token_file);

// For data.train and data.valid: ConfigError naming both sides when meta.json's tokenizer is not
// data.tokenizer (key data.tokenizer) or its vocab exceeds `model_vocab` (key model.vocab).
void check_token_meta(const RunConfig& cfg, int64_t model_vocab);

}  // namespace vcycle
