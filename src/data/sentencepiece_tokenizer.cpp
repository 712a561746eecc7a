// SentencePiece tokenizers through the plugin; see include/vcycle/data/sentencepiece_tokenizer.h.
#include "vcycle/data/sentencepiece_tokenizer.h"

#include <dlfcn.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "sentencepiece_plugin.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"

namespace vcycle {

namespace {

struct Plugin {
  vcycle_spm_train_fn train = nullptr;
  vcycle_spm_load_fn load = nullptr;
  vcycle_spm_free_fn free = nullptr;
  vcycle_spm_vocab_fn vocab = nullptr;
  vcycle_spm_encode_fn encode = nullptr;
  vcycle_spm_decode_fn decode = nullptr;
};

// Where the plugin may be: the build tree's copy, then the installed one (CMake sets both).
const char* const kPluginPaths[] = {
#ifdef VCYCLE_SENTENCEPIECE_PLUGIN_BUILD
    VCYCLE_SENTENCEPIECE_PLUGIN_BUILD,
#endif
#ifdef VCYCLE_SENTENCEPIECE_PLUGIN_INSTALL
    VCYCLE_SENTENCEPIECE_PLUGIN_INSTALL,
#endif
    nullptr};

Plugin load_plugin() {
#if defined(__SANITIZE_ADDRESS__)
  throw InputError("SentencePiece is not available in a sanitizer build: its plugin needs dlopen's RTLD_DEEPBIND, "
                   "which AddressSanitizer refuses (see src/data/sentencepiece_plugin.h)");
#else
  std::string tried;
  for (const char* const* path = kPluginPaths; *path; ++path) {
    void* handle = dlopen(*path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      tried += std::string("\n  ") + *path + ": " + dlerror();
      continue;
    }
    Plugin p;
    auto symbol = [&](const char* name) {
      void* f = dlsym(handle, name);
      if (!f) throw InputError(std::string(*path) + ": the SentencePiece plugin has no symbol " + name);
      return f;
    };
    p.train = reinterpret_cast<vcycle_spm_train_fn>(symbol(VCYCLE_SPM_TRAIN));
    p.load = reinterpret_cast<vcycle_spm_load_fn>(symbol(VCYCLE_SPM_LOAD));
    p.free = reinterpret_cast<vcycle_spm_free_fn>(symbol(VCYCLE_SPM_FREE));
    p.vocab = reinterpret_cast<vcycle_spm_vocab_fn>(symbol(VCYCLE_SPM_VOCAB));
    p.encode = reinterpret_cast<vcycle_spm_encode_fn>(symbol(VCYCLE_SPM_ENCODE));
    p.decode = reinterpret_cast<vcycle_spm_decode_fn>(symbol(VCYCLE_SPM_DECODE));
    return p;  // the handle stays open for the life of the process
  }
  if (tried.empty()) {
    throw InputError("this vcycle was built without SentencePiece (libsentencepiece-dev was not found when it was "
                     "configured; tools/install-deps.sh installs it)");
  }
  throw InputError("cannot load vcycle's SentencePiece plugin:" + tried);
#endif
}

// Loaded once, on first use; a failure is remembered and thrown again on every use.
const Plugin& plugin() {
  static std::once_flag once;
  static Plugin p;
  static std::string error;
  std::call_once(once, [] {
    try {
      p = load_plugin();
    } catch (const InputError& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw InputError(error);
  return p;
}

template <typename T>
void append_to(void* context, const void* data, size_t len) {
  auto* out = static_cast<std::vector<T>*>(context);
  const auto* first = static_cast<const T*>(data);
  out->insert(out->end(), first, first + len);
}

constexpr size_t kErrorCap = 1024;

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path) : path_(model_path) {
  const std::string model = read_file(model_path);
  char err[kErrorCap] = "";
  if (plugin().load(model.data(), model.size(), &processor_, err, sizeof err) != 0) {
    throw InputError(model_path + ": not a SentencePiece model (" + err + ")");
  }
  vocab_ = plugin().vocab(processor_);
  if (vocab_ > 65536) {
    plugin().free(processor_);
    throw InputError(model_path + ": vocab " + std::to_string(vocab_) + " does not fit uint16 token files (max 65536)");
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (processor_) plugin().free(processor_);
}

std::vector<uint16_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  char err[kErrorCap] = "";
  if (plugin().encode(processor_, text.data(), text.size(), append_to<int32_t>, &ids, err, sizeof err) != 0) {
    throw InputError(path_ + ": encoding failed (" + err + ")");
  }
  return std::vector<uint16_t>(ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::decode(const std::vector<uint16_t>& ids) const {
  for (const uint16_t id : ids) {
    if (id >= vocab_) {
      throw InputError(path_ + ": id " + std::to_string(id) + " is outside the vocab (" + std::to_string(vocab_) + ")");
    }
  }
  const std::vector<int32_t> wide(ids.begin(), ids.end());
  std::vector<char> text;
  char err[kErrorCap] = "";
  if (plugin().decode(processor_, wide.data(), wide.size(), append_to<char>, &text, err, sizeof err) != 0) {
    throw InputError(path_ + ": decoding failed (" + err + ")");
  }
  return std::string(text.begin(), text.end());
}

void train_sentencepiece(const std::string& text, const std::string& model_path, const SentencePieceOptions& options) {
  if (options.model_type != "bpe" && options.model_type != "unigram") {
    throw InputError("--model-type must be bpe or unigram, got '" + options.model_type + "'");
  }
  if (options.vocab < 300 || options.vocab > 65536) {
    throw InputError("--vocab must be in [300, 65536] (256 byte-fallback pieces plus subwords; uint16 ids), got " +
                     std::to_string(options.vocab));
  }
  const std::string vocab = std::to_string(options.vocab);
  const std::vector<std::pair<const char*, const char*>> settings = {
      {"model_type", options.model_type.c_str()},
      {"vocab_size", vocab.c_str()},
      {"normalization_rule_name", "identity"},  // exact round trip: no NFKC, no whitespace folding
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"user_defined_symbols", "\n"},  // newlines survive although training sees lines
      {"byte_fallback", "true"},       // unseen characters as bytes, never <unk>
      {"character_coverage", "1.0"},
      {"max_sentence_length", "65536"},
      {"num_threads", "1"},            // deterministic: the same text gives the same model
      {"minloglevel", "2"},
  };
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : settings) keys.push_back(k), values.push_back(v);
  std::vector<char> model;
  char err[kErrorCap] = "";
  if (plugin().train(text.data(), text.size(), keys.data(), values.data(), keys.size(), append_to<char>, &model, err,
                     sizeof err) != 0) {
    throw InputError("SentencePiece training failed: " + std::string(err));
  }
  write_file_atomic(model_path, std::string(model.begin(), model.end()));
}

}  // namespace vcycle
