// meta.json of prepared token files; see include/vcycle/config/token_meta.h.
#include "vcycle/config/token_meta.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/yaml_util.h"

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
  return TokenMeta{path.string(), meta["tokenizer"].get<std::string>(), meta["vocab"].get<int64_t>()};
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
