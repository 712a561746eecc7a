// Table-driven bad input through the real command line: each malformed config, data file,
// checkpoint or argument exits with the documented code, names what is wrong, and writes nothing.
#include <filesystem>
#include <functional>

#include "test_util.h"
#include "vcycle/core/file_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using vcycle::test::run_cli;
using vcycle::test::TempDir;
using vcycle::test::write_text;

namespace {

std::string base_config(const std::string& data, const std::string& out) {
  return "name: bad\nseed: 3\nthreads: 1\n"
         "model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 2 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2, pairing: { width: halves, depth: halves }, "
         "interpolation: { alpha: 0.5, mode: fixed }, optimizer_state: reset }\n"
         "phases:\n"
         "  - { level: 1, steps: 3, optimizer: adamw, lr: 1e-3 }\n"
         "  - { level: 2, steps: 3, optimizer: adamw, lr: 1e-3 }\n"
         "  - { level: 1, steps: 3, optimizer: adamw, lr: 1e-3, schedule: cosine }\n"
         "baseline: { steps: 6, optimizer: adamw, lr: 1e-3 }\n"
         "eval: { every: 3, batches: 1 }\n"
         "train: { log_every: 1, checkpoint_every: 2, on_nonfinite: stop }\n"
         "output: " + out + "\n";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  return text.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("every kind of bad input gets its documented exit code and a message naming it", "[cli][badinput]") {
  TempDir dir("badinput");
  const std::string data = dir.str("data");
  vcycle::test::prepare_fixture_corpus(data);
  const std::string out = dir.str("out");
  const std::string good = base_config(data, out);

  // Bad data files, referenced by config cases below.
  write_text(dir.str("empty.bin"), "");
  write_text(dir.str("odd.bin"), std::string(5001, 'a'));
  {
    std::string big = vcycle::read_file(data + "/train.bin");
    big[11] = '\x02';  // token id 0x02xx >= 256
    write_text(dir.str("bigid.bin"), big);
  }
  write_text(dir.str("tiny.bin"), std::string("\x41\x00\x42\x00\x43\x00\x44\x00", 8));  // 4 tokens < context + 1
  write_text(dir.str("binary.txt"), std::string("caf\xc3\xa9 ok \xff bad", 13));

  struct Case {
    std::vector<std::string> fragments;  // all must appear in the output
    int code;
  };
  auto cfg = [&](const std::string& from, const std::string& to) { return replaced(good, from, to); };
  struct ConfigCase {
    std::string text;
    std::vector<std::string> fragments;
    int code;
  };
  const std::vector<ConfigCase> config_cases = {
      {cfg("seed: 3", "seed: 3\nbogus: 1"), {"bogus", "unknown key"}, 2},
      {cfg("batch_size: 2", "batch_size: 2, shuffle: 1"), {"data.shuffle", "unknown key"}, 2},
      {cfg("baseline: { steps: 6", "baseline: { steps: -6"), {"baseline.steps", "must be > 0"}, 2},
      {cfg("baseline: { steps: 6", "baseline: { steps: 0"), {"baseline.steps", "must be > 0"}, 2},
      {cfg("steps: 3, optimizer: adamw, lr: 1e-3 }\n  - { level: 2", "steps: 3, optimizer: adamw, lr: x }\n  - { level: 2"), {"phases[0].lr", "expected a number"}, 2},
      {cfg("lr: 1e-3, schedule", "lr: -1e-3, schedule"), {"phases[2].lr", "must be > 0"}, 2},
      {cfg("layers: 2", "layers: 2.5"), {"model.layers", "expected an integer"}, 2},
      {cfg("layers: 2", "layers: [2]"), {"model.layers", "expected an integer"}, 2},
      {cfg("hidden: 32", "hidden: -32"), {"model.hidden", "must be > 0"}, 2},
      {cfg("context: 16", "context: 0"), {"model.context", "must be > 0"}, 2},
      {cfg("hidden: 32", "hidden: 33"), {"model.heads", "not divisible"}, 2},
      {cfg("layers: 2", "layers: 3"), {"levels", "layers"}, 2},
      {cfg("ffn: 64", "ffn: 65"), {"levels", "ffn"}, 2},
      {cfg("type: gpt", "type: rnn"), {"model.type", "valid: gpt"}, 2},
      {cfg("context: 16", "context: 16, vocab: 100"), {"model.vocab", "tokenizer"}, 2},
      {cfg("/train.bin", "/missing.bin"), {"data.train", "does not exist"}, 2},
      {cfg(data + "/valid.bin", dir.str("empty.bin")), {"data.valid", "empty"}, 2},
      {cfg(data + "/train.bin", dir.str("odd.bin")), {"odd.bin", "odd"}, 2},
      {cfg(data + "/train.bin", dir.str("bigid.bin")), {"bigid.bin", "not below the model's vocab"}, 2},
      {cfg(data + "/valid.bin", dir.str("tiny.bin")), {"tiny.bin", "fewer than context"}, 2},
      {cfg("seed: 3", "seed: 3"), {}, 0},  // control: the base config itself is fine
      {cfg("batch_size: 2", "batch_size: 2, tokenizer: wordpiece"), {"data.tokenizer", "valid: byte, sentencepiece"}, 2},
      {cfg("batch_size: 2", "batch_size: 0"), {"data.batch_size", "must be > 0"}, 2},
      {cfg("alpha: 0.5", "alpha: 1.5"), {"levels.interpolation.alpha", "[0, 1]"}, 2},
      {cfg("alpha: 0.5", "alpha: -0.1"), {"levels.interpolation.alpha", "[0, 1]"}, 2},
      {cfg("mode: fixed", "mode: adaptive"), {"levels.interpolation.mode", "valid: fixed, norm_matched"}, 2},
      {cfg("width: halves", "width: odd"), {"levels.pairing.width", "valid: halves, neighbors"}, 2},
      {cfg("optimizer_state: reset", "optimizer_state: keep"), {"levels.optimizer_state", "valid: reset, project"}, 2},
      {cfg("count: 2", "count: 3"), {"phases", "no phase reaches level 3"}, 2},
      {cfg("{ level: 2, steps: 3", "{ level: 3, steps: 3"), {"phases[1].level", "beyond levels.count = 2"}, 2},
      {cfg("depth_factor: 2", "depth_factor: 0"), {"levels.depth_factor", "must be >= 1"}, 2},
      {cfg("optimizer: adamw, lr: 1e-3 }\n  - { level: 2", "optimizer: rmsprop, lr: 1e-3 }\n  - { level: 2"), {"phases[0].optimizer", "valid: "}, 2},
      {cfg("schedule: cosine", "schedule: step"), {"phases[2].schedule", "valid: constant, cosine"}, 2},
      {cfg("every: 3", "every: 0"), {"eval.every", "must be > 0"}, 2},
      {cfg("on_nonfinite: stop", "on_nonfinite: ignore"), {"train.on_nonfinite", "valid: stop, skip_step"}, 2},
      {cfg("threads: 1", "threads: -1"), {"threads", "must be >= 0"}, 2},
      {cfg("seed: 3", "seed: 3\ndevice: tpu"), {"device", "unknown device"}, 2},
      {cfg("seed: 3", "seed: 3\noptimizers: { sgd: {} }"), {"optimizers.sgd", "unknown optimizer"}, 2},
      {"model: { type: gpt\n", {"YAML syntax error"}, 2},
      {std::string(), {"expected a YAML map"}, 2},
      {"- 1\n- 2\n", {"expected a YAML map"}, 2},
      {cfg("model: { type: gpt, layers: 2, hidden: 32, heads: 2, ffn: 64, context: 16 }\n", ""), {"model", "missing"}, 2},
  };
  int checked = 0;
  for (size_t i = 0; i < config_cases.size(); ++i) {
    const auto& c = config_cases[i];
    const std::string& text = c.text;
    const std::string path = dir.str("case" + std::to_string(i) + ".yaml");
    write_text(path, text);
    const auto r = run_cli({"train", path, "--quiet"});
    INFO("config case " << i << ":\n" << text << "\noutput: " << r.output);
    CHECK(r.exit_code == c.code);
    for (const auto& f : c.fragments) CHECK_THAT(r.output, Catch::Contains(f));
    if (c.code != 0) {
      // The message names the file at fault: the config, or the data file it points to.
      CHECK_THAT(r.output, Catch::Contains(path) || Catch::Contains(".bin:"));
      CHECK_FALSE(fs::exists(out));  // nothing written
    }
    fs::remove_all(out);
    ++checked;
  }

  // Command-line and other inputs.
  const std::string good_path = dir.str("good.yaml");
  write_text(good_path, good);
  const std::vector<std::pair<std::vector<std::string>, Case>> cli_cases = {
      {{"train"}, {{"config is required"}, 2}},
      {{"train", dir.str("nope.yaml")}, {{"nope.yaml", "config file not found"}, 2}},
      {{"frobnicate"}, {{"frobnicate"}, 2}},
      {{"train", good_path, "--set", "noequals"}, {{"key=value"}, 2}},
      {{"train", good_path, "--set", "phases[7].lr=1"}, {{"[7]"}, 2}},
      {{"train", good_path, "--set", "baseline.lr=-1"}, {{"baseline.lr", "must be > 0"}, 2}},
      {{"report", dir.str("nowhere")}, {{"nowhere", "no metrics"}, 2}},
      {{"prepare", dir.str("binary.txt"), "--out", dir.str("p")}, {{"binary.txt", "not UTF-8"}, 2}},
      {{"prepare", dir.str("missing.txt"), "--out", dir.str("p")}, {{"missing.txt"}, 2}},
      {{"prepare", "--corpus", "shakespeare", "--out", dir.str("p")}, {{"unknown corpus", "valid: austen, kjv"}, 2}},
      {{"bench", "train", "--model", "gpt5"}, {{"unknown model size"}, 2}},
  };
  for (const auto& [args, c] : cli_cases) {
    const auto r = run_cli(args);
    INFO("args: " << args[0] << (args.size() > 1 ? " " + args[1] : "") << "\noutput: " << r.output);
    CHECK(r.exit_code == c.code);
    for (const auto& f : c.fragments) CHECK_THAT(r.output, Catch::Contains(f));
    ++checked;
  }

  // Damaged checkpoints: a real run's checkpoint, damaged, then --resume.
  REQUIRE(run_cli({"train", good_path, "--quiet"}).exit_code == 0);
  const std::string ckpt = out + "/baseline/checkpoint.ckpt";
  const std::string intact = vcycle::read_file(ckpt);
  // Without a previous checkpoint to fall back to, a damaged one is refused (the fallback is
  // tests/tools/reliability_test.cpp's).
  fs::remove(ckpt + ".prev");
  const std::vector<std::pair<std::string, std::vector<std::string>>> ckpt_cases = {
      {intact.substr(0, 16), {"truncated"}},
      {intact.substr(0, intact.size() / 2), {"truncated"}},
      {std::string(), {"empty"}},
      {"GIF89a" + intact.substr(6), {"wrong magic"}},
      {[&] { std::string s = intact; s[s.size() / 3] ^= 0x01; return s; }(), {"checksum mismatch"}},
      {[&] { std::string s = intact; s[8] = 7; return s; }(), {"version 7"}},
      {intact + "junk", {"trailing"}},
  };
  for (size_t i = 0; i < ckpt_cases.size(); ++i) {
    write_text(ckpt, ckpt_cases[i].first);
    const auto r = run_cli({"train", good_path, "--quiet", "--resume"});
    INFO("checkpoint case " << i << ": " << r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("checkpoint.ckpt"));
    for (const auto& f : ckpt_cases[i].second) CHECK_THAT(r.output, Catch::Contains(f));
    CHECK(vcycle::read_file(ckpt) == ckpt_cases[i].first);  // the damaged file is left for inspection, not overwritten
    ++checked;
  }
  CHECK(checked >= 40);
}

TEST_CASE("a non-finite loss stops the run (exit 3, step and phase named) or is skipped", "[cli][nonfinite]") {
  TempDir dir("nonfinite");
  const std::string data = dir.str("data");
  vcycle::test::prepare_fixture_corpus(data);
  // An absurd learning rate without clipping blows the weights up within a few steps.
  const std::string text = replaced(replaced(base_config(data, dir.str("out")), "baseline: { steps: 6, optimizer: adamw, lr: 1e-3 }",
                                             "baseline: { steps: 6, optimizer: adamw, lr: 1e30 }"),
                                    "train: {", "train: { max_grad_norm: 0,");
  write_text(dir.str("c.yaml"), text);
  const auto stop = run_cli({"train", dir.str("c.yaml"), "--quiet"});
  CHECK(stop.exit_code == 3);
  CHECK_THAT(stop.output, Catch::Contains("non-finite") && Catch::Contains("phase 1") && Catch::Contains("step"));

  write_text(dir.str("s.yaml"), replaced(replaced(text, "on_nonfinite: stop", "on_nonfinite: skip_step"), dir.str("out"), dir.str("out2")));
  const auto skip = run_cli({"train", dir.str("s.yaml"), "--quiet"});
  CHECK_THAT(skip.output, Catch::Contains("skipped step"));
}
