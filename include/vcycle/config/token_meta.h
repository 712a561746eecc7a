// meta.json, which `vcycle prepare` writes beside the token files, read back: a run checks that its
// config reads the data with the tokenizer that made it, and that the model's vocab covers it.
//
// Token files without a meta.json (e.g. nanoGPT's train.bin / val.bin: uint16 GPT-2 ids, vocab 50257)
// are used as they are; TokenFile still checks every id against the model's vocab.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vcycle/config/run_config.h"

namespace vcycle {

struct TokenMeta {
  std::string path;       // the meta.json read
  std::string tokenizer;  // "byte", ...
  int64_t vocab = 0;      // the tokenizer's vocab size
};

// The meta.json in the directory of `token_file`; nullopt when there is none. InputError naming the
// file when it is not a JSON object with `tokenizer` (string) and `vocab` (integer).
std::optional<TokenMeta> read_token_meta(const std::string& token_file);

// For data.train and data.valid: ConfigError naming both sides when meta.json's tokenizer is not
// data.tokenizer (key data.tokenizer) or its vocab exceeds `model_vocab` (key model.vocab).
void check_token_meta(const RunConfig& cfg, int64_t model_vocab);

}  // namespace vcycle
