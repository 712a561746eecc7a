// meta.json of prepared token files; see include/vcycle/config/token_meta.h.
#include "vcycle/config/token_meta.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/yaml_util.h"
#include "vcycle/data/sentencepiece_tokenizer.h"

namespace vcycle {

namespace fs = std::filesystem;

std::optional<TokenMeta> read_token_meta(const std::string& token_file) {
  const fs::path path = fs::path(token_file).parent_path() / "meta.json";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  const auto meta = nlohmann::json::parse(read_file(path.string()), nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object() || !meta.contains("tokenizer") || !meta["tokenizer"].is_string() || !meta.contains("vocab") ||
      !meta["vocab"].is_number_integer()) {
    throw InputError(path.string() + ": not a token-data meta.json (needs \"tokenizer\" and an integer \"vocab\")");
  }
  TokenMeta out;
  out.path = path.string();
  out.tokenizer = meta["tokenizer"].get<std::string>();
  out.vocab = meta["vocab"].get<int64_t>();
  auto integer = [&](const char* key) {
    return meta.contains(key) && meta[key].is_number_integer() ? meta[key].get<int64_t>() : int64_t{0};
  };
  if (meta.contains("model_file") && meta["model_file"].is_string()) out.model_file = meta["model_file"].get<std::string>();
  out.valid_bytes = integer("valid_bytes");
  out.valid_tokens = integer("valid_tokens");
  out.source_bytes = integer("source_bytes");
  out.train_tokens = integer("train_tokens");
  return out;
}

std::unique_ptr<Tokenizer> make_data_tokenizer(const DataConfig& data) {
  if (data.tokenizer != "sentencepiece") return make_tokenizer(data.tokenizer);
  const fs::path dir = fs::path(data.train).parent_path();
  std::string model = (dir / "tokenizer.model").string();
  if (const auto meta = read_token_meta(data.train); meta && !meta->model_file.empty()) {
    model = (dir / meta->model_file).string();
  }
  std::error_code ec;
  if (!fs::is_regular_file(model, ec)) {
    throw InputError("the sentencepiece tokenizer needs its model file " + model +
                     " (`vcycle prepare --tokenizer sentencepiece` writes it beside the token files)");
  }
  return std::make_unique<SentencePieceTokenizer>(model);
}

double bytes_per_token(const std::string& tokenizer, const std::string& token_file) {
  if (tokenizer == "byte") return 1.0;
  const auto meta = read_token_meta(token_file);
  if (!meta) return 0;
  if (fs::path(token_file).filename() == "valid.bin" && meta->valid_bytes > 0 && meta->valid_tokens > 0) {
    return static_cast<double>(meta->valid_bytes) / static_cast<double>(meta->valid_tokens);
  }
  const int64_t tokens = meta->train_tokens + meta->valid_tokens;  // the whole text's average
  return meta->source_bytes > 0 && tokens > 0 ? static_cast<double>(meta->source_bytes) / static_cast<double>(tokens) : 0;
}

void check_token_meta(const RunConfig& cfg, int64_t model_vocab) {
  for (const std::string& file : {cfg.data.train, cfg.data.valid}) {
    if (file.empty()) continue;
    const auto meta = read_token_meta(file);
    if (!meta) continue;
    if (meta->tokenizer != cfg.data.tokenizer) {
      throw ConfigError(cfg.file, "data.tokenizer",
                        "the config reads the data with the '" + cfg.data.tokenizer + "' tokenizer, but " + meta->path +
                            " says " + file + " was made with the '" + meta->tokenizer + "' tokenizer");
    }
    if (meta->vocab > model_vocab) {
      throw ConfigError(cfg.file, "model.vocab",
                        "the model takes token ids below " + std::to_string(model_vocab) + ", but " + meta->path +
                            " says the data's tokenizer has vocab " + std::to_string(meta->vocab));
    }
  }
}

}  // namespace vcycle
