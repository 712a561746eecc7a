// Tokenizers; see include/vcycle/data/tokenizer.h.
#include "vcycle/data/tokenizer.h"

#include "vcycle/core/errors.h"

namespace vcycle {

std::vector<uint16_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<uint16_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<uint16_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] > 255) throw InputError("byte tokenizer: id " + std::to_string(ids[i]) + " is not a byte");
    out[i] = static_cast<char>(ids[i]);
  }
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  if (name == "sentencepiece") {
    throw InputError("a sentencepiece tokenizer is loaded from its model file (SentencePieceTokenizer; a run finds "
                     "tokenizer.model beside its token files)");
  }
  throw InputError("unknown tokenizer '" + name + "' (valid: byte, sentencepiece)");
}

}  // namespace vcycle
