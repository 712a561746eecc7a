// The `model:` sections of the encoder families (type: bert, type: vit) parse strictly: every error
// names the key (`model.patch`), unknown keys are rejected, and level divisibility is checked at load.

#include "test_util.h"
#include "vcycle/config/run_config.h"
#include "vcycle/core/errors.h"
#include "vcycle/models/registry.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

std::string run_sections(const std::string& out) {
  return "levels: { count: 2, width_factor: 2, depth_factor: 2 }\n"
         "phases:\n"
         "  - { level: 1, steps: 2, optimizer: adamw, lr: 1e-3 }\n"
         "  - { level: 2, steps: 2, optimizer: adamw, lr: 1e-3 }\n"
         "  - { level: 1, steps: 2, optimizer: adamw, lr: 1e-3 }\n"
         "baseline: { steps: 4, optimizer: adamw, lr: 1e-3 }\n"
         "output: " + out + "\n";
}

struct Fixture {
  test::TempDir dir{"encoder_config"};
  std::string bert, vit;
  Fixture() {
    test::prepare_fixture_corpus(dir.str("text"));
    const std::string images = test::write_tiny_image_set(dir.str("images"), 16, 8, 8, 4);
    bert = "name: b\n"
           "model: { type: bert, layers: 2, hidden: 32, heads: 4, ffn: 64, context: 16, vocab: 257 }\n"
           "data: { train: " + dir.str("text/train.bin") + ", valid: " + dir.str("text/valid.bin") + ", batch_size: 4 }\n" +
           run_sections(dir.str("out"));
    vit = "name: v\n"
          "model: { type: vit, image_size: 8, patch: 4, channels: 1, classes: 4, layers: 2, hidden: 16, heads: 2, ffn: 32 }\n"
          "data: { train: " + images + ", valid: " + dir.str("images/t10k-images-idx3-ubyte") + ", batch_size: 4 }\n" +
          run_sections(dir.str("out"));
  }
  RunConfig load(const std::string& text) {
    test::write_text(dir.str("c.yaml"), text);
    return load_config(dir.str("c.yaml"));
  }
  std::string error_of(std::string text, const std::string& from, const std::string& to) {
    const auto pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, from.size(), to);
    try {
      load(text);
    } catch (const ConfigError& e) {
      return e.what();
    }
    FAIL("no ConfigError for replacing '" << from << "' with '" << to << "'");
    return "";
  }
};

}  // namespace

TEST_CASE("bert and vit model sections parse into their adapters", "[config][bert][vit]") {
  Fixture f;
  const RunConfig b = f.load(f.bert);
  auto bert = make_model(b);
  CHECK(bert->type() == "bert");
  CHECK(bert->vocab_size() == 256);  // ids the token files may hold; 256 is [MASK]
  CHECK(dynamic_cast<const BertAdapter&>(*bert).config().head_size == 8);
  const RunConfig v = f.load(f.vit);
  auto vit = make_model(v);
  CHECK(vit->type() == "vit");
  CHECK(vit->context() == 5);  // 2 × 2 patches + the class token
  CHECK_FALSE(vit->reads_token_files());
  CHECK(dynamic_cast<const ViTAdapter&>(*vit).config().ffn == 32);
}

TEST_CASE("bad bert and vit model sections name the key at fault", "[config][bert][vit]") {
  Fixture f;
  struct Case {
    const std::string* text;
    std::string from, to, key, fragment;
  };
  const std::vector<Case> cases = {
      {&f.bert, "vocab: 257", "vocab: 257, dropout: 0.1", "model.dropout", "unknown key"},
      {&f.bert, "vocab: 257", "vocab: 256", "model.vocab", "tokenizer's vocab 256"},
      {&f.bert, "vocab: 257", "vocab: 1", "model.vocab", "[2, 65537]"},
      {&f.bert, "context: 16", "context: 0", "model.context", "must be > 0"},
      {&f.bert, "layers: 2", "layers: 3", "levels", "layers"},
      {&f.bert, "heads: 4", "heads: 5", "model.heads", "not divisible"},
      {&f.vit, "patch: 4", "patch: 3", "model.patch", "not divisible"},
      {&f.vit, "patch: 4, ", "", "model.patch", "missing required key"},
      {&f.vit, "ffn: 32", "ffn: 32, dropout: 0.1", "model.dropout", "unknown key"},
      {&f.vit, "classes: 4", "classes: 1", "model.classes", "must be >= 2"},
      {&f.vit, "image_size: 8", "image_size: -8", "model.image_size", "must be > 0"},
      {&f.vit, "patch: 4", "patch: four", "model.patch", "expected an integer"},
      {&f.vit, "heads: 2", "heads: 3", "model.heads", "not divisible"},
      {&f.vit, "heads: 2", "heads: 1, head_size: 16", "levels", "heads"},  // one head cannot halve
      {&f.vit, "type: vit", "type: vitt", "model.type", "valid: gpt, bert, vit"},
  };
  for (const auto& c : cases) {
    const std::string msg = f.error_of(*c.text, c.from, c.to);
    INFO("case '" << c.to << "' gave: " << msg);
    CHECK_THAT(msg, Catch::Contains(c.key + ":") && Catch::Contains(c.fragment) && Catch::Contains("c.yaml"));
  }
}
