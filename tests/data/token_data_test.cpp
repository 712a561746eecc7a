// Corpus preparation and token batches.

#include <fstream>

#include "test_util.h"
#include "vcycle/data/token_data.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

TEST_CASE("prepare splits by contiguous chunks, holds out >= the fraction, and is reproducible", "[data]") {
  test::TempDir dir("data");
  ByteTokenizer tok;
  PrepareOptions opt;
  opt.chunk_bytes = 1024;
  opt.valid_fraction = 0.1;
  const std::string text_path = test::source_path("tests/fixtures/corpus.txt");
  const auto a = prepare_text(text_path, dir.str("a"), tok, opt);
  const auto b = prepare_text(text_path, dir.str("b"), tok, opt);
  const std::string text = read_file(text_path);
  CHECK(a.train_tokens + a.valid_tokens == static_cast<int64_t>(text.size()));
  CHECK(static_cast<double>(a.valid_tokens) >= 0.1 * static_cast<double>(text.size()) - 1024);
  CHECK(read_file(a.train_path) == read_file(b.train_path));
  CHECK(read_file(a.valid_path) == read_file(b.valid_path));

  // Validation text is a set of whole chunks of the original text: every 1 KiB-ish piece of it
  // appears verbatim in the text, and does not appear in the training tokens.
  TokenFile valid(a.valid_path, 256);
  std::vector<uint16_t> ids(valid.data(), valid.data() + 200);
  const std::string piece = tok.decode(ids);
  CHECK(text.find(piece) != std::string::npos);
  const std::string train_text = [&] {
    TokenFile train(a.train_path, 256);
    return tok.decode(std::vector<uint16_t>(train.data(), train.data() + train.size()));
  }();
  CHECK(train_text.find(piece) == std::string::npos);

  opt.seed = 99;
  const auto c = prepare_text(text_path, dir.str("c"), tok, opt);
  CHECK(read_file(c.valid_path) != read_file(a.valid_path));
}

TEST_CASE("prepare rejects empty and non-UTF-8 input", "[data]") {
  test::TempDir dir("data_bad");
  ByteTokenizer tok;
  test::write_text(dir.str("empty.txt"), "");
  test::write_text(dir.str("binary.txt"), std::string("abc\xff\xfe def", 9));
  CHECK_THROWS_WITH(prepare_text(dir.str("empty.txt"), dir.str("o"), tok, {}), Catch::Contains("empty"));
  CHECK_THROWS_WITH(prepare_text(dir.str("binary.txt"), dir.str("o"), tok, {}), Catch::Contains("not UTF-8") && Catch::Contains("offset 3"));
  CHECK_THROWS_WITH(prepare_text(dir.str("missing.txt"), dir.str("o"), tok, {}), Catch::Contains("missing.txt"));
}

TEST_CASE("token files are validated when opened", "[data]") {
  test::TempDir dir("tokens");
  test::write_text(dir.str("odd.bin"), std::string(3, 'a'));
  test::write_text(dir.str("empty.bin"), "");
  const uint16_t big[2] = {5, 300};
  test::write_text(dir.str("big.bin"), std::string(reinterpret_cast<const char*>(big), 4));
  CHECK_THROWS_WITH(TokenFile(dir.str("odd.bin"), 256), Catch::Contains("odd"));
  CHECK_THROWS_WITH(TokenFile(dir.str("empty.bin"), 256), Catch::Contains("empty"));
  CHECK_THROWS_WITH(TokenFile(dir.str("big.bin"), 256), Catch::Contains("token id 300") && Catch::Contains("vocab 256"));
  CHECK_THROWS_WITH(TokenFile(dir.str("none.bin"), 256), Catch::Contains("none.bin"));
  CHECK(TokenFile(dir.str("big.bin"), 301).size() == 2);
}

TEST_CASE("training batches are a pure function of the step, and targets are inputs shifted by one", "[data]") {
  test::TempDir dir("batches");
  test::prepare_fixture_corpus(dir.str());
  TokenBatchSource a(dir.str("train.bin"), dir.str("valid.bin"), 256, 4, 32, 1234, 3);
  TokenBatchSource b(dir.str("train.bin"), dir.str("valid.bin"), 256, 4, 32, 1234, 3);
  const Batch x = a.train_batch(17, 4, 0, 1);
  CHECK(x.input.sizes() == torch::IntArrayRef({4, 32}));
  CHECK(x.tokens == 128);
  CHECK(torch::equal(x.input, b.train_batch(17, 4, 0, 1).input));
  CHECK_FALSE(torch::equal(x.input, a.train_batch(18, 4, 0, 1).input));
  using torch::indexing::Slice;
  CHECK(torch::equal(x.input.index({Slice(), Slice(1, 32)}), x.target.index({Slice(), Slice(0, 31)})));
  CHECK(torch::equal(a.valid_batch(2).input, b.valid_batch(2).input));
  // Micro-batches are row slices of the step's whole batch.
  const Batch whole = a.train_batch(5, 8, 0, 1);
  for (int64_t m = 0; m < 4; ++m) {
    CHECK(torch::equal(a.train_batch(5, 2, m, 4).input, whole.input.index({Slice(2 * m, 2 * m + 2)})));
  }
  CHECK_FALSE(torch::equal(a.valid_batch(0).input, a.valid_batch(1).input));
}
