// SentencePiece end to end: prepare trains a model on the training split, a run trains on its ids,
// the first validation sequence decodes back to the original text (checked by vcycle and by
// Debian's python3-sentencepiece), and a vocab or tokenizer mismatch is refused.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/metrics.h"
#include "vcycle/data/sentencepiece_tokenizer.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

std::vector<uint16_t> read_ids(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<uint16_t> ids(bytes.size() / 2);
  std::memcpy(ids.data(), bytes.data(), ids.size() * 2);
  return ids;
}

}  // namespace

TEST_CASE("sentencepiece: prepare -> train -> the validation text decodes back exactly", "[data][sentencepiece][cli]") {
  test::TempDir dir("spm");
  const std::string corpus = test::source_path("tests/fixtures/corpus.txt");
  const auto prep = test::run_cli({"prepare", corpus, "--chunk-bytes", "2048", "--out", dir.str("sp"), "--tokenizer", "sentencepiece", "--vocab", "400"});
  INFO(prep.output);
  REQUIRE(prep.exit_code == 0);
  const auto meta = nlohmann::json::parse(std::ifstream(dir.str("sp/meta.json")));
  CHECK(meta["tokenizer"] == "sentencepiece");
  CHECK(meta["vocab"] == 400);
  CHECK(meta["model_file"] == "tokenizer.model");

  // The first validation sequence (one context window of 16 ids) comes back byte for byte.
  const SentencePieceTokenizer tok(dir.str("sp/tokenizer.model"));
  CHECK(tok.vocab_size() == 400);
  const std::string text = read_file(corpus);
  const auto valid = read_ids(dir.str("sp/valid.bin"));
  REQUIRE(valid.size() > 16);
  const std::string first = tok.decode(std::vector<uint16_t>(valid.begin(), valid.begin() + 16));
  CHECK(first.size() > 16);  // subwords: more than one byte per token
  CHECK(text.find(first) != std::string::npos);
  CHECK(meta["valid_bytes"].get<size_t>() == tok.decode(valid).size());
  CHECK(read_ids(dir.str("sp/train.bin")).size() * 3 < text.size() * 2);  // under 2 tokens per 3 bytes, even at vocab 400
  // Characters the training text never showed come back through byte fallback, not <unk>.
  const std::string unseen = "Größe 東京 \t\n  two  spaces\n";
  CHECK(tok.decode(tok.encode(unseen)) == unseen);
  CHECK_THROWS_WITH(tok.decode({400}), Catch::Contains("id 400") && Catch::Contains("outside the vocab"));

  // Python's SentencePiece reads our model and ids the same way.
  test::write_text(dir.str("first.txt"), first);
  const auto py = test::run_shell(test::debian_python() + " " + test::source_path("tests/data/sentencepiece_check.py") + " " +
                                  dir.str("sp/tokenizer.model") + " " + dir.str("sp/valid.bin") + " " + corpus + " 16 " +
                                  dir.str("first.txt"));
  INFO(py.output);
  CHECK(py.exit_code == 0);

  const std::string cfg = dir.str("c.yaml");
  test::write_text(cfg, "threads: 1\nmodel: { type: gpt, layers: 1, hidden: 16, heads: 2, ffn: 32, context: 16, vocab: 400 }\n"
                        "data: { train: " + dir.str("sp/train.bin") + ", valid: " + dir.str("sp/valid.bin") +
                        ", tokenizer: sentencepiece, batch_size: 2 }\n"
                        "phases: [ { level: 1, steps: 1 } ]\nbaseline: { steps: 2 }\neval: { every: 2, batches: 1 }\n"
                        "output: " + dir.str("out") + "\n");
  const auto train = test::run_cli({"train", cfg, "--quiet"});
  INFO(train.output);
  REQUIRE(train.exit_code == 0);
  // Eval rows carry bits per byte: nats/token over ln 2, over the validation text's bytes per token.
  nlohmann::json last_eval;
  for (const auto& line : read_jsonl_lines(dir.str("out/baseline/metrics.jsonl"))) {
    const auto row = nlohmann::json::parse(line);
    if (row["type"] == "eval") last_eval = row;
  }
  REQUIRE(last_eval.contains("val_bits_per_byte"));
  const double bytes_per_token = meta["valid_bytes"].get<double>() / meta["valid_tokens"].get<double>();
  CHECK(last_eval["val_bits_per_byte"].get<double>() ==
        Approx(last_eval["val_loss"].get<double>() / std::log(2.0) / bytes_per_token).epsilon(1e-12));
  const auto gen = test::run_cli({"generate", dir.str("out/baseline/checkpoint.ckpt"), "--prompt", "Elizabeth", "--tokens", "5"});
  INFO(gen.output);
  CHECK(gen.exit_code == 0);
  CHECK_THAT(gen.output, Catch::StartsWith("Elizabeth"));
  const auto ev = test::run_cli({"eval", dir.str("out/baseline/checkpoint.ckpt")});
  INFO(ev.output);
  CHECK_THAT(ev.output, Catch::Contains("nats/token") && Catch::Contains("bits/byte"));

  // A model vocab below the tokenizer's, and a config that reads the ids as bytes: exit 2, both sides named.
  const auto small = test::run_cli({"train", cfg, "--set", "model.vocab=256"});
  CHECK(small.exit_code == 2);
  CHECK_THAT(small.output, Catch::Contains("256") && Catch::Contains("meta.json") && Catch::Contains("400"));
  const auto bytes = test::run_cli({"train", cfg, "--set", "data.tokenizer=byte"});
  CHECK(bytes.exit_code == 2);
  CHECK_THAT(bytes.output, Catch::Contains("'byte'") && Catch::Contains("'sentencepiece'"));

  // --tokenizer-model reuses a trained model: the same ids. Options of the other tokenizer are refused.
  const auto again = test::run_cli({"prepare", corpus, "--chunk-bytes", "2048", "--out", dir.str("sp2"), "--tokenizer", "sentencepiece",
                                    "--tokenizer-model", dir.str("sp/tokenizer.model")});
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(read_file(dir.str("sp2/valid.bin")) == read_file(dir.str("sp/valid.bin")));
  const auto not_model = test::run_cli({"prepare", corpus, "--chunk-bytes", "2048", "--out", dir.str("sp3"), "--tokenizer", "sentencepiece",
                                        "--tokenizer-model", corpus});
  CHECK(not_model.exit_code == 2);
  CHECK_THAT(not_model.output, Catch::Contains("corpus.txt") && Catch::Contains("not a SentencePiece model"));
  const auto byte_vocab = test::run_cli({"prepare", corpus, "--chunk-bytes", "2048", "--out", dir.str("sp4"), "--vocab", "500"});
  CHECK(byte_vocab.exit_code == 2);
  CHECK_THAT(byte_vocab.output, Catch::Contains("--vocab is for --tokenizer sentencepiece"));
  const auto bad_vocab = test::run_cli({"prepare", corpus, "--chunk-bytes", "2048", "--out", dir.str("sp5"), "--tokenizer", "sentencepiece", "--vocab", "70000"});
  CHECK(bad_vocab.exit_code == 2);
  CHECK_THAT(bad_vocab.output, Catch::Contains("--vocab must be in [300, 65536]"));
}
