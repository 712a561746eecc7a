// meta.json is checked when a run loads its config; token files without one (nanoGPT's GPT-2 ids)
// train as they are.
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/errors.h"
#include "vcycle/config/token_meta.h"
#include "vcycle/models/registry.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("a tokenizer or vocab that disagrees with meta.json is refused naming both sides", "[data][meta]") {
  test::TempDir dir("tokmeta");
  test::prepare_fixture_corpus(dir.str("data"));
  const auto meta = read_token_meta(dir.str("data/train.bin"));
  REQUIRE(meta.has_value());
  CHECK(meta->tokenizer == "byte");
  CHECK(meta->vocab == 256);
  CHECK_FALSE(read_token_meta(dir.str("elsewhere/train.bin")).has_value());

  const std::string cfg = dir.str("c.yaml");
  test::write_text(cfg, "model: { type: gpt, layers: 1, hidden: 16, heads: 2, ffn: 32, context: 8 }\n"
                        "data: { train: " + dir.str("data/train.bin") + ", valid: " + dir.str("data/valid.bin") + " }\n"
                        "phases: [ { level: 1, steps: 1 } ]\noutput: " + dir.str("out") + "\n");
  CHECK_NOTHROW(load_config(cfg));
  // The data says it was made by another tokenizer (as a SentencePiece-prepared directory would).
  auto json = nlohmann::json::parse(std::ifstream(dir.str("data/meta.json")));
  json["tokenizer"] = "sentencepiece";
  json["vocab"] = 8192;
  test::write_text(dir.str("data/meta.json"), json.dump());
  CHECK_THROWS_WITH(load_config(cfg), Catch::Contains("data.tokenizer") && Catch::Contains("'byte'") &&
                                          Catch::Contains("'sentencepiece'") && Catch::Contains("meta.json"));
  json["tokenizer"] = "byte";
  test::write_text(dir.str("data/meta.json"), json.dump());
  CHECK_THROWS_WITH(load_config(cfg), Catch::Contains("model.vocab") && Catch::Contains("below 256") &&
                                          Catch::Contains("vocab 8192"));
  test::write_text(dir.str("data/meta.json"), "[1, 2]");
  CHECK_THROWS_WITH(load_config(cfg), Catch::Contains("meta.json") && Catch::Contains("not a token-data meta.json"));
  // Through the command line: exit 2.
  test::write_text(dir.str("data/meta.json"), nlohmann::json{{"tokenizer", "sentencepiece"}, {"vocab", 300}}.dump());
  const auto r = test::run_cli({"train", cfg, "--set", "baseline={steps: 1}"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("'sentencepiece'"));
}

TEST_CASE("nanoGPT-style .bin files (uint16 GPT-2 ids, no meta.json) train with model.vocab 50257", "[data][meta][cli]") {
  test::TempDir dir("nanogpt");
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> id(0, 50256);
  for (const char* name : {"train.bin", "val.bin"}) {
    std::vector<uint16_t> ids(600);
    for (auto& v : ids) v = static_cast<uint16_t>(id(rng));
    ids[5] = 50256;  // GPT-2's <|endoftext|>, the largest id
    std::ofstream(dir.str(name), std::ios::binary).write(reinterpret_cast<const char*>(ids.data()), ids.size() * 2);
  }
  const std::string cfg = dir.str("c.yaml");
  test::write_text(cfg, "threads: 1\nmodel: { type: gpt, layers: 1, hidden: 8, heads: 2, ffn: 16, context: 8, vocab: 50257 }\n"
                        "data: { train: " + dir.str("train.bin") + ", valid: " + dir.str("val.bin") + ", batch_size: 2 }\n"
                        "phases: [ { level: 1, steps: 1 } ]\nbaseline: { steps: 2 }\neval: { every: 2, batches: 1 }\n"
                        "output: " + dir.str("out") + "\n");
  const auto ok = test::run_cli({"train", cfg, "--quiet"});
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  // With the byte-level vocab the ids do not fit: exit 2 naming the file.
  const auto bad = test::run_cli({"train", cfg, "--quiet", "--set", "model.vocab=256", "--set", "output=" + dir.str("out2")});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("train.bin") && Catch::Contains("50256"));
}
