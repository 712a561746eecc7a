// `vcycle finetune` (schedules/finetune.cpp, src/config/finetune_config.cpp): end to end through the command
// line at tiny size, and config errors that name the key.

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/data/token_data.h"
#include "vcycle/core/errors.h"
#include "vcycle/schedules/finetune.h"
#include "vcycle/models/lora.h"
#include "vcycle/data/tokenizer.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {

std::string base_config(const std::string& data, const std::string& out) {
  return "name: tiny\nseed: 11\nthreads: 1\n"
         "model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 32 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 8 }\n"
         "eval: { every: 100, batches: 2 }\n"
         "train: { log_every: 100 }\n"
         "baseline: { steps: 60, optimizer: adamw, lr: 1e-2, warmup: 5 }\n"
         "output: " + out + "\n";
}

std::string finetune_config(const test::TempDir& dir, const std::string& extra = "") {
  return "name: ft\nseed: 5\nthreads: 1\n"
         "base: { config: " + dir.str("base.yaml") + ", checkpoint: " + dir.str("run/baseline/checkpoint.ckpt") + " }\n"
         "lora: { r: 8, alpha: 16, dropout: 0.0, targets: [attn.qkv, attn.proj, mlp.fc, mlp.proj] }\n"
         "data: { train: " + dir.str("down/train.bin") + ", valid: " + dir.str("down/valid.bin") + ", batch_size: 8 }\n"
         "steps: 60\noptimizer: adamw\nlr: 1e-2\nwarmup: 5\nschedule: cosine\n"
         "optimizers: { adamw: { weight_decay: 0.0 } }\n"
         "eval: { every: 1000, batches: 4 }\nlog_every: 20\n" + extra +
         "output: " + dir.str("ft") + "\n";
}

// The downstream text: C++ source of this repository — a different domain from the English the base
// model saw, and held out from its training entirely.
void prepare_downstream(const std::string& out_dir, const std::string& text_path) {
  std::ostringstream text;
  for (const char* rel : {"src/config/run_config.cpp", "src/data/token_data.cpp", "src/core/checkpoint.cpp", "schedules/cycle_runner.cpp"}) {
    std::ifstream in(test::source_path(rel));
    text << in.rdbuf();
  }
  test::write_text(text_path, text.str());
  PrepareOptions opt;
  opt.chunk_bytes = 2048;
  opt.valid_fraction = 0.15;
  prepare_text(text_path, out_dir, ByteTokenizer(), opt);
}

// Base run + downstream data in `dir` (shared by the tests below).
void make_base(const test::TempDir& dir) {
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("base.yaml"), base_config(dir.str("data"), dir.str("run")));
  const auto train = test::run_cli({"train", dir.str("base.yaml"), "--quiet"});
  INFO(train.output);
  REQUIRE(train.exit_code == 0);
  prepare_downstream(dir.str("down"), dir.str("down.txt"));
}

}  // namespace

TEST_CASE("finetune: LoRA r=8 on a trained tiny GPT lowers its loss on held-out downstream text", "[lora][cli]") {
  test::TempDir dir("finetune");
  make_base(dir);
  test::write_text(dir.str("ft.yaml"), finetune_config(dir));
  const auto r = test::run_cli({"finetune", dir.str("ft.yaml")});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("trainable parameters") && Catch::Contains("validation loss"));

  std::ifstream in(dir.str("ft/finetune.json"));
  const auto summary = nlohmann::json::parse(in);
  const double before = summary["val_loss_before"], after = summary["val_loss_after"], merged = summary["val_loss_merged"];
  INFO("loss " << before << " -> " << after << " (merged " << merged << ")");
  CHECK(after < before - 0.1);
  CHECK(std::abs(merged - after) < 1e-3);
  // 8 layers; per block r·(in + out): qkv 8·(32+96), proj 8·(32+32), fc 8·(32+64), proj 8·(64+32).
  const int64_t trainable = 2 * 8 * ((32 + 96) + (32 + 32) + (32 + 64) + (64 + 32));
  CHECK(summary["trainable_params"].get<int64_t>() == trainable);
  CHECK(summary["adapter_bytes"].get<int64_t>() == 4 * trainable);
  CHECK(summary["optimizer_state_bytes"].get<int64_t>() == 2 * 4 * trainable);  // AdamW: m and v
  CHECK(summary["total_params"].get<int64_t>() > 5 * trainable);

  const auto file = lora::read_adapters(dir.str("ft/adapters.lora"));
  CHECK(file.layers.size() == 8u);
  CHECK(file.options.r() == 8);
}

TEST_CASE("finetune: bad configs and inputs name the key, pattern or file", "[lora][cli]") {
  test::TempDir dir("finetune_bad");
  make_base(dir);
  auto expect_error = [&](const std::string& yaml, const std::vector<std::string>& parts) {
    test::write_text(dir.str("bad.yaml"), yaml);
    std::string message;
    try {
      load_finetune_config(dir.str("bad.yaml"));
    } catch (const InputError& e) {
      message = e.what();
    }
    INFO(yaml);
    for (const auto& part : parts) CHECK_THAT(message, Catch::Contains(part));
  };
  std::string good = finetune_config(dir);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  expect_error(with("r: 8,", "r: 0,"), {"bad.yaml", "lora.r", "must be >= 1"});
  expect_error(with("r: 8,", "rank: 8,"), {"lora.rank"});
  expect_error(with("steps: 60", "steps: 60\nstpes: 3"), {"stpes"});
  expect_error(with("optimizer: adamw", "optimizer: sgd"), {"optimizer", "sgd", "came"});
  expect_error(with("run/baseline/checkpoint.ckpt", "nope.ckpt"), {"base.checkpoint", "nope.ckpt"});
  expect_error(with("dropout: 0.0", "dropout: 1.5"), {"lora.dropout"});
  expect_error(with("targets: [attn.qkv, attn.proj, mlp.fc, mlp.proj]", "targets: []"), {"lora.targets"});
  expect_error(with("down/valid.bin", "down/none.bin"), {"data.valid", "none.bin"});

  // Errors found when the run starts: exit code 2 and the message names what is wrong.
  test::write_text(dir.str("bad.yaml"), with("mlp.proj]", "mlp.nothing]"));
  auto r = test::run_cli({"finetune", dir.str("bad.yaml"), "--quiet"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("'mlp.nothing'") && Catch::Contains("matches no"));
  test::write_text(dir.str("bad.yaml"), with("run/baseline/checkpoint.ckpt", "down/train.bin"));
  r = test::run_cli({"finetune", dir.str("bad.yaml"), "--quiet"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("train.bin"));
  r = test::run_cli({"finetune", dir.str("missing.yaml")});
  CHECK(r.exit_code == 2);
}
