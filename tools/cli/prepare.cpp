// `vcycle prepare`: tokenize a text file (or a corpus Debian ships) into train/valid token files.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "commands.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/data/sentencepiece_tokenizer.h"
#include "vcycle/data/token_data.h"

namespace vcycle::cli {

namespace fs = std::filesystem;

void add_prepare_command(CLI::App& app) {
  struct Args {
    std::string text, corpus = "austen", out = "data/austen", tokenizer = "byte", tokenizer_model;
    PrepareOptions options;
    SentencePieceOptions sentencepiece;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("prepare", "Tokenize a UTF-8 text (default: Jane Austen's novels) into train.bin/valid.bin");
  cmd->add_option("text", args->text, "UTF-8 text file (omit to extract --corpus from its Debian package)");
  cmd->add_option("--corpus", args->corpus, "corpus to extract when no text is given: austen | kjv")->capture_default_str();
  cmd->add_option("--out", args->out, "output directory")->capture_default_str();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer: byte | sentencepiece")->capture_default_str();
  cmd->add_option("--vocab", args->sentencepiece.vocab, "sentencepiece: vocab size to train, in [300, 65536]")
      ->capture_default_str();
  cmd->add_option("--model-type", args->sentencepiece.model_type, "sentencepiece: bpe | unigram")->capture_default_str();
  cmd->add_option("--tokenizer-model", args->tokenizer_model,
                  "sentencepiece: reuse this trained model instead of training one (copied to OUT/tokenizer.model)");
  cmd->add_option("--valid-fraction", args->options.valid_fraction, "share of the text held out for validation")
      ->capture_default_str();
  cmd->add_option("--chunk-bytes", args->options.chunk_bytes, "split granularity (contiguous chunks)")->capture_default_str();
  cmd->add_option("--seed", args->options.seed, "seed of the train/valid split")->capture_default_str();
  cmd->callback([args, cmd] {
    if (args->tokenizer != "sentencepiece") {
      for (const char* opt : {"--vocab", "--model-type", "--tokenizer-model"}) {
        if (cmd->get_option(opt)->count() > 0) throw InputError(std::string(opt) + " is for --tokenizer sentencepiece");
      }
    }
    std::string text = args->text;
    if (text.empty()) {
      text = (fs::path(args->out) / (args->corpus + ".txt")).string();
      std::cerr << "extracting corpus '" << args->corpus << "' to " << text << "\n";
      extract_builtin_corpus(args->corpus, text);
    }
    std::unique_ptr<Tokenizer> tokenizer;
    if (args->tokenizer == "sentencepiece") {
      // tokenizer.model lives beside the token files: a run that reads them finds it there.
      fs::create_directories(args->out);
      const std::string model = (fs::path(args->out) / "tokenizer.model").string();
      if (!args->tokenizer_model.empty()) {
        std::error_code ec;
        if (!fs::equivalent(args->tokenizer_model, model, ec)) {
          SentencePieceTokenizer check(args->tokenizer_model);  // refuses a file that is not a model, naming it
          write_file_atomic(model, read_file(args->tokenizer_model));
        }
      } else {
        std::cerr << fmt::format("training a {} SentencePiece model (vocab {}) on the training split of {}\n",
                                 args->sentencepiece.model_type, args->sentencepiece.vocab, text);
        train_sentencepiece(training_text(text, args->options), model, args->sentencepiece);
      }
      tokenizer = std::make_unique<SentencePieceTokenizer>(model);
    } else {
      tokenizer = make_tokenizer(args->tokenizer);
    }
    const PrepareResult r = prepare_text(text, args->out, *tokenizer, args->options);
    std::cout << fmt::format("prepared {}: {} train tokens -> {}, {} valid tokens -> {} ({} tokenizer, vocab {})\n", text,
                             r.train_tokens, r.train_path, r.valid_tokens, r.valid_path, tokenizer->name(),
                             tokenizer->vocab_size());
  });
}

}  // namespace vcycle::cli
