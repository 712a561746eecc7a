// Tokenizers turn UTF-8 text into token ids. The byte-level one (vocab 256) needs no training and
// no files; others (e.g. SentencePiece) implement the same interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vcycle {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<uint16_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<uint16_t>& ids) const = 0;
};

// Every byte is one token: ids 0..255.
class ByteTokenizer final : public Tokenizer {
 public:
  std::string name() const override { return "byte"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<uint16_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<uint16_t>& ids) const override;
};

// "byte" -> ByteTokenizer; unknown name -> InputError listing the valid ones.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name);

}  // namespace vcycle
