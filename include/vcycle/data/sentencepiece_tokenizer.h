// SentencePiece subword tokenizers (Kudo & Richardson 2018) through Debian's libsentencepiece: BPE or
// unigram models that `vcycle prepare --tokenizer sentencepiece` trains on a text's training split.
//
// The models vcycle trains round-trip text exactly, decode(encode(t)) == t: no normalisation, no
// whitespace folding, no dummy prefix, newline a piece of its own, and byte fallback for characters
// the training text never showed. So the loss is over the real text, and bits per byte compare with
// the byte-level tokenizer's.
//
// libsentencepiece is reached through a plugin loaded at run time (src/data/sentencepiece_plugin.h
// says why); a build configured without libsentencepiece-dev, or a sanitizer build (ASan refuses the
// plugin's RTLD_DEEPBIND), says so when a SentencePiece tokenizer is asked for.
#pragma once

#include <cstdint>
#include <string>

#include "vcycle/data/tokenizer.h"

namespace vcycle {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads a model file (`tokenizer.model`); InputError naming the path when it cannot.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::string name() const override { return "sentencepiece"; }
  int64_t vocab_size() const override { return vocab_; }
  std::vector<uint16_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<uint16_t>& ids) const override;
  const std::string& model_path() const { return path_; }

 private:
  std::string path_;
  void* processor_ = nullptr;  // the plugin's SentencePieceProcessor
  int64_t vocab_ = 0;
};

struct SentencePieceOptions {
  int64_t vocab = 8192;            // pieces, in [300, 65536]: 256 byte-fallback pieces plus subwords; uint16 ids
  std::string model_type = "bpe";  // bpe | unigram
};

// Trains a model on `text` and writes it to `model_path` atomically. InputError for a bad option or
// a text SentencePiece cannot train on (its message included).
void train_sentencepiece(const std::string& text, const std::string& model_path, const SentencePieceOptions& options);

}  // namespace vcycle
