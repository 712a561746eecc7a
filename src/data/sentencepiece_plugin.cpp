// vcycle's SentencePiece plugin: Debian's libsentencepiece behind the C interface of
// sentencepiece_plugin.h (why a plugin: see there). Built as a module of its own, not part of
// libvcycle; it includes no vcycle header and throws nothing across the boundary.
#include "sentencepiece_plugin.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#define VCYCLE_SPM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

void set_error(char* err, size_t cap, const std::string& message) {
  if (!err || cap == 0) return;
  const size_t n = std::min(cap - 1, message.size());
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

// The training text line by line: SentencePiece trains on sentences (newline is made a piece of its
// own by the caller's options, so the lines join back exactly).
class LineIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::string_view text) : text_(text) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    while (pos_ < text_.size()) {
      const size_t end = std::min(text_.find('\n', pos_), text_.size());
      line_.assign(text_.substr(pos_, end - pos_));
      pos_ = end + 1;
      if (!line_.empty()) return;
    }
    done_ = true;
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  std::string line_;
  bool done_ = false;
};

// Runs `body`, which returns a SentencePiece status: 0 when it is OK, else 1 with its message (or an
// exception's) in err. Nothing is thrown across the C boundary.
template <typename Body>
int guarded(char* err, size_t err_cap, Body body) {
  try {
    const sentencepiece::util::Status status = body();
    if (status.ok()) return 0;
    set_error(err, err_cap, status.ToString());
  } catch (const std::exception& e) {
    set_error(err, err_cap, e.what());
  }
  return 1;
}

}  // namespace

VCYCLE_SPM_EXPORT int vcycle_spm_train(const char* text, size_t text_len, const char* const* option_keys,
                                       const char* const* option_values, size_t n_options, vcycle_spm_sink model_sink,
                                       void* context, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    std::unordered_map<std::string, std::string> options;
    for (size_t i = 0; i < n_options; ++i) options[option_keys[i]] = option_values[i];
    LineIterator lines(std::string_view(text, text_len));
    std::string model;
    const auto status = sentencepiece::SentencePieceTrainer::Train(options, &lines, &model);
    if (status.ok()) model_sink(context, model.data(), model.size());
    return status;
  });
}

VCYCLE_SPM_EXPORT int vcycle_spm_load(const char* model, size_t model_len, void** processor, char* err,
                                      size_t err_cap) {
  return guarded(err, err_cap, [&] {
    auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto status = sp->LoadFromSerializedProto(absl::string_view(model, model_len));
    if (status.ok()) *processor = sp.release();
    return status;
  });
}

VCYCLE_SPM_EXPORT void vcycle_spm_free(void* processor) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(processor);
}

VCYCLE_SPM_EXPORT int64_t vcycle_spm_vocab(const void* processor) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(processor)->GetPieceSize();
}

VCYCLE_SPM_EXPORT int vcycle_spm_encode(const void* processor, const char* text, size_t text_len,
                                        vcycle_spm_sink ids_sink, void* context, char* err, size_t err_cap) {
  static_assert(sizeof(int) == sizeof(int32_t), "ids cross the boundary as int32");
  return guarded(err, err_cap, [&] {
    std::vector<int> ids;
    const auto* sp = static_cast<const sentencepiece::SentencePieceProcessor*>(processor);
    const auto status = sp->Encode(absl::string_view(text, text_len), &ids);
    if (status.ok()) ids_sink(context, ids.data(), ids.size());
    return status;
  });
}

VCYCLE_SPM_EXPORT int vcycle_spm_decode(const void* processor, const int32_t* ids, size_t n_ids,
                                        vcycle_spm_sink text_sink, void* context, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    std::string text;
    const auto* sp = static_cast<const sentencepiece::SentencePieceProcessor*>(processor);
    const auto status = sp->Decode(std::vector<int>(ids, ids + n_ids), &text);
    if (status.ok()) text_sink(context, text.data(), text.size());
    return status;
  });
}
