// `vcycle prepare`: tokenize a text file (or a corpus Debian ships) into train/valid token files.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "vcycle/data/token_data.h"

namespace vcycle::cli {

void add_prepare_command(CLI::App& app) {
  struct Args {
    std::string text, corpus = "austen", out = "data/austen", tokenizer = "byte";
    PrepareOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("prepare", "Tokenize a UTF-8 text (default: Jane Austen's novels) into train.bin/valid.bin");
  cmd->add_option("text", args->text, "UTF-8 text file (omit to extract --corpus from its Debian package)");
  cmd->add_option("--corpus", args->corpus, "corpus to extract when no text is given: austen | kjv")->capture_default_str();
  cmd->add_option("--out", args->out, "output directory")->capture_default_str();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer: byte")->capture_default_str();
  cmd->add_option("--valid-fraction", args->options.valid_fraction, "share of the text held out for validation")
      ->capture_default_str();
  cmd->add_option("--chunk-bytes", args->options.chunk_bytes, "split granularity (contiguous chunks)")->capture_default_str();
  cmd->add_option("--seed", args->options.seed, "seed of the train/valid split")->capture_default_str();
  cmd->callback([args] {
    std::string text = args->text;
    if (text.empty()) {
      text = (std::filesystem::path(args->out) / (args->corpus + ".txt")).string();
      std::cerr << "extracting corpus '" << args->corpus << "' to " << text << "\n";
      extract_builtin_corpus(args->corpus, text);
    }
    auto tokenizer = make_tokenizer(args->tokenizer);
    const PrepareResult r = prepare_text(text, args->out, *tokenizer, args->options);
    std::cout << fmt::format("prepared {}: {} train tokens -> {}, {} valid tokens -> {} ({} tokenizer, vocab {})\n", text,
                             r.train_tokens, r.train_path, r.valid_tokens, r.valid_path, tokenizer->name(),
                             tokenizer->vocab_size());
  });
}

}  // namespace vcycle::cli
