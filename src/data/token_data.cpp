// Corpus preparation and memory-mapped token batches; see include/vcycle/data/token_data.h.
#include "vcycle/data/token_data.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/data/sentencepiece_tokenizer.h"

namespace vcycle {

namespace fs = std::filesystem;

namespace {

// Position of the first byte that is not valid UTF-8, or npos.
size_t first_invalid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || c == 0 || i + n > s.size()) return i;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return i;
    }
    i += n;
  }
  return std::string::npos;
}

// FNV-1a of a text, as 16 hex digits.
std::string fnv1a64_hex(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

std::string tokens_as_bytes(const std::vector<uint16_t>& ids) {
  std::string out(ids.size() * sizeof(uint16_t), '\0');
  if (!ids.empty()) std::memcpy(out.data(), ids.data(), out.size());  // x86/ARM are little-endian, the file format's order
  return out;
}

// The text of `text_path`, checked, cut into contiguous chunks, and which of them are held out.
struct TextSplit {
  std::string text;
  int64_t chunk = 0;           // bytes per chunk (the last may be shorter)
  std::vector<bool> is_valid;  // per chunk
  std::string_view chunk_text(size_t c) const {
    const size_t begin = c * static_cast<size_t>(chunk);
    return begin >= text.size() ? std::string_view() : std::string_view(text).substr(begin, chunk);
  }
};

TextSplit split_text(const std::string& text_path, const PrepareOptions& options) {
  if (!(options.valid_fraction > 0 && options.valid_fraction < 1)) {
    throw InputError("--valid-fraction must be in (0, 1), got " + std::to_string(options.valid_fraction));
  }
  if (options.chunk_bytes < 256) throw InputError("--chunk-bytes must be >= 256, got " + std::to_string(options.chunk_bytes));
  const std::string text = read_file(text_path);
  if (text.empty()) throw InputError(text_path + ": text file is empty");
  if (auto bad = first_invalid_utf8(text); bad != std::string::npos) {
    throw InputError(text_path + ": not UTF-8 text (invalid or NUL byte at offset " + std::to_string(bad) + ")");
  }

  // The requested split needs one whole chunk for the smaller side at the requested fraction: a
  // smaller text would silently get bigger chunks and a split far from the fraction asked for.
  const double smaller_side = std::min(options.valid_fraction, 1 - options.valid_fraction);
  const int64_t min_bytes = options.chunk_bytes * static_cast<int64_t>(std::ceil(1 / smaller_side - 1e-9));
  if (static_cast<int64_t>(text.size()) < min_bytes) {
    throw InputError(fmt::format("{}: text of {} bytes is too small to split with --valid-fraction {} in chunks of "
                                 "--chunk-bytes {}: it needs at least {} bytes (lower --chunk-bytes, or give more text)",
                                 text_path, text.size(), options.valid_fraction, options.chunk_bytes, min_bytes));
  }
  // Contiguous chunks; a seeded shuffle picks ceil(fraction · chunks) of them for validation.
  const int64_t n_chunks = std::max<int64_t>(2, (static_cast<int64_t>(text.size()) + options.chunk_bytes - 1) / options.chunk_bytes);
  const int64_t chunk = (static_cast<int64_t>(text.size()) + n_chunks - 1) / n_chunks;
  std::vector<int64_t> order(n_chunks);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(options.seed);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t n_valid = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(options.valid_fraction * n_chunks)));
  std::vector<bool> is_valid(n_chunks, false);
  for (int64_t i = 0; i < n_valid; ++i) is_valid[order[i]] = true;
  return TextSplit{text, chunk, is_valid};
}

}  // namespace

std::string training_text(const std::string& text_path, const PrepareOptions& options) {
  const TextSplit split = split_text(text_path, options);
  std::string out;
  for (size_t c = 0; c < split.is_valid.size(); ++c) {
    if (!split.is_valid[c]) out += split.chunk_text(c);
  }
  return out;
}

PrepareResult prepare_text(const std::string& text_path, const std::string& out_dir, const Tokenizer& tokenizer,
                           const PrepareOptions& options) {
  const TextSplit split = split_text(text_path, options);
  std::vector<uint16_t> train, valid;
  int64_t valid_bytes = 0;
  for (size_t c = 0; c < split.is_valid.size(); ++c) {
    const std::string_view text = split.chunk_text(c);
    const auto ids = tokenizer.encode(text);
    auto& dst = split.is_valid[c] ? valid : train;
    dst.insert(dst.end(), ids.begin(), ids.end());
    if (split.is_valid[c]) valid_bytes += static_cast<int64_t>(text.size());
  }

  fs::create_directories(out_dir);
  PrepareResult result;
  result.train_path = (fs::path(out_dir) / "train.bin").string();
  result.valid_path = (fs::path(out_dir) / "valid.bin").string();
  result.meta_path = (fs::path(out_dir) / "meta.json").string();
  result.train_tokens = static_cast<int64_t>(train.size());
  result.valid_tokens = static_cast<int64_t>(valid.size());
  write_file_atomic(result.train_path, tokens_as_bytes(train));
  write_file_atomic(result.valid_path, tokens_as_bytes(valid));
  nlohmann::json meta = {{"tokenizer", tokenizer.name()},
                         {"vocab", tokenizer.vocab_size()},
                         {"source", fs::absolute(text_path).string()},
                         {"source_bytes", split.text.size()},
                         {"train_tokens", result.train_tokens},
                         {"valid_tokens", result.valid_tokens},
                         {"valid_bytes", valid_bytes},  // bits per byte = nats per token / ln 2 · tokens / bytes
                         {"valid_fraction", options.valid_fraction},
                         {"chunk_bytes", split.chunk},
                         {"seed", options.seed}};
  meta["text_fnv1a64"] = fnv1a64_hex(split.text);  // which text these token files were made from
  if (const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(&tokenizer)) {
    meta["model_file"] = fs::path(sp->model_path()).filename().string();  // beside the token files
  }
  write_file_atomic(result.meta_path, meta.dump(2) + "\n");
  return result;
}

void extract_builtin_corpus(const std::string& corpus, const std::string& out_path) {
  std::string command, package;
  if (corpus == "austen") {
    package = "r-cran-janeaustenr";
    command = "Rscript -e 'library(janeaustenr); writeLines(c(emma, mansfieldpark, northangerabbey, persuasion, "
              "prideprejudice, sensesensibility), \"" + out_path + ".tmp\")'";
  } else if (corpus == "kjv") {
    package = "bible-kjv";
    command = "bible -l200 Gen1:1-Rev22:21 > '" + out_path + ".tmp'";
  } else {
    throw InputError("unknown corpus '" + corpus + "' (valid: austen, kjv)");
  }
  if (out_path.find_first_of("'\"") != std::string::npos) throw InputError("corpus output path must not contain quotes: " + out_path);
  fs::create_directories(fs::absolute(out_path).parent_path());
  // The group's redirection silences the tools; the command's own redirection (kjv's) still writes the file.
  const int rc = std::system(("{ " + command + "; } > /dev/null 2>&1").c_str());
  std::error_code ec;
  if (rc != 0 || fs::file_size(out_path + ".tmp", ec) == 0) {
    fs::remove(out_path + ".tmp", ec);
    throw InputError("could not extract corpus '" + corpus + "': install Debian's " + package +
                     " (apt-get install --no-install-recommends " + package + ")");
  }
  fs::rename(out_path + ".tmp", out_path);
}

// ---------------------------------------------------------------------------- TokenFile
TokenFile::TokenFile(const std::string& path, int64_t vocab) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(path + ": cannot open token file: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) {
    ::close(fd);
    throw InputError(path + ": token file is empty");
  }
  if (st.st_size % 2 != 0) {
    ::close(fd);
    throw InputError(path + ": token file size " + std::to_string(st.st_size) + " is odd; expected uint16 tokens");
  }
  bytes_ = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw InputError(path + ": mmap failed: " + std::strerror(errno));
  tokens_ = static_cast<const uint16_t*>(p);
  count_ = static_cast<int64_t>(bytes_ / 2);
  const uint16_t max_id = *std::max_element(tokens_, tokens_ + count_);
  if (max_id >= vocab) {
    ::munmap(const_cast<uint16_t*>(tokens_), bytes_);
    throw InputError(path + ": token id " + std::to_string(max_id) + " is not below the model's vocab " +
                     std::to_string(vocab) + " (wrong tokenizer or model.vocab?)");
  }
}

TokenFile::~TokenFile() {
  if (tokens_ != nullptr) ::munmap(const_cast<uint16_t*>(tokens_), bytes_);
}

// ---------------------------------------------------------------------------- batches
TokenBatchSource::TokenBatchSource(const std::string& train_path, const std::string& valid_path, int64_t vocab,
                                   int64_t batch_size, int64_t context, uint64_t seed, int64_t valid_batches)
    : train_(train_path, vocab), valid_(valid_path, vocab), batch_size_(batch_size), context_(context), seed_(seed),
      valid_batches_(valid_batches) {
  for (const TokenFile* f : {&train_, &valid_}) {
    if (f->size() < context_ + 1) {
      throw InputError(f->path() + ": " + std::to_string(f->size()) + " tokens is fewer than context + 1 = " +
                       std::to_string(context_ + 1));
    }
  }
}

Batch TokenBatchSource::window_batch(const TokenFile& file, const std::vector<int64_t>& offsets) const {
  const int64_t b = static_cast<int64_t>(offsets.size());
  auto buf = torch::empty({b, context_ + 1}, torch::kLong);
  auto* out = buf.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    const uint16_t* src = file.data() + offsets[i];
    for (int64_t t = 0; t <= context_; ++t) out[i * (context_ + 1) + t] = src[t];
  }
  using torch::indexing::Slice;
  return Batch{buf.index({Slice(), Slice(0, context_)}).contiguous(), buf.index({Slice(), Slice(1, context_ + 1)}).contiguous(),
               b * context_};
}

Batch TokenBatchSource::train_batch(int64_t global_step, int64_t batch_size, int64_t micro, int64_t micro_count) {
  // The generator depends only on (seed, step): resuming at step s draws exactly the same windows.
  std::seed_seq seq{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32), static_cast<uint32_t>(global_step),
                    static_cast<uint32_t>(static_cast<uint64_t>(global_step) >> 32), 0x5eedu};
  std::mt19937_64 rng(seq);
  std::uniform_int_distribution<int64_t> pick(0, train_.size() - context_ - 1);
  std::vector<int64_t> offsets(batch_size * micro_count);
  for (auto& o : offsets) o = pick(rng);
  return window_batch(train_, std::vector<int64_t>(offsets.begin() + micro * batch_size, offsets.begin() + (micro + 1) * batch_size));
}

Batch TokenBatchSource::valid_batch(int64_t index) {
  // valid_batches · batch_size windows spread evenly over the validation file.
  const int64_t total = valid_batches_ * batch_size_;
  const int64_t span = valid_.size() - context_ - 1;
  std::vector<int64_t> offsets(batch_size_);
  for (int64_t i = 0; i < batch_size_; ++i) offsets[i] = ((index * batch_size_ + i) * span) / std::max<int64_t>(1, total - 1);
  return window_batch(valid_, offsets);
}

}  // namespace vcycle
