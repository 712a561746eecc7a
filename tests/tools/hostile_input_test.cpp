// Generated hostile input: over a hundred bad configs, data files, checkpoints and command lines.
// Each must be refused before training with an input error (exit 2) or an I/O error (exit 3) whose
// message names its subject (the file, key or argument), and must leave every file as it was.
//
// Configs, data and checkpoints go through the library in-process (load_config + run_cycle, as
// `vcycle train` calls them; InputError is what the program turns into exit 2), which keeps a hundred
// cases to a few seconds; the command-line cases run the real program.
#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/models/registry.h"
#include "vcycle/schedules/cycle_runner.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using namespace vcycle;

namespace {

// Block style, one key a line, so that each case replaces exactly one line.
std::string base_config(const std::string& data, const std::string& out) {
  return "name: hostile\n"
         "seed: 5\n"
         "threads: 1\n"
         "model:\n"
         "  type: gpt\n"
         "  layers: 2\n"
         "  hidden: 16\n"
         "  heads: 2\n"
         "  ffn: 32\n"
         "  context: 16\n"
         "data:\n"
         "  train: " + data + "/train.bin\n"
         "  valid: " + data + "/valid.bin\n"
         "  batch_size: 2\n"
         "eval:\n"
         "  every: 10\n"
         "  batches: 1\n"
         "train:\n"
         "  log_every: 1\n"
         "  checkpoint_every: 2\n"
         "  max_grad_norm: 1.0\n"
         "baseline:\n"
         "  steps: 4\n"
         "  optimizer: adamw\n"
         "  lr: 3e-3\n"
         "  warmup: 1\n"
         "optimizers:\n"
         "  adamw:\n"
         "    betas: [0.9, 0.95]\n"
         "    weight_decay: 0.1\n"
         "    no_decay: [emb]\n"
         "output: " + out + "\n";
}

std::string replace_line(const std::string& text, const std::string& line, const std::string& with) {
  const auto pos = text.find(line + "\n");
  REQUIRE(pos != std::string::npos);
  return std::string(text).replace(pos, line.size(), with);
}

// Every regular file under `dir` with its bytes, but the lock file (it records the last locker's pid).
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != ".vcycle.lock") out[e.path().string()] = read_file(e.path().string());
  }
  return out;
}

// Runs `vcycle train <config> [--resume]` in-process; the InputError's message, or "" if none came.
std::string refusal(const std::string& config, bool resume, const std::vector<std::string>& overrides = {}) {
  try {
    const RunConfig cfg = load_config(config, overrides);
    auto adapter = make_model(cfg);
    run_cycle(cfg, *adapter, cfg.baseline_phases(), cfg.output + "/baseline", CycleOptions{resume, "hostile", true});
  } catch (const InputError& e) {
    return e.what();
  } catch (const RunError& e) {
    return e.what();  // exit 3: allowed for I/O faults
  }
  return "";
}

}  // namespace

TEST_CASE("hostile input: a hundred generated bad configs, data files, checkpoints and arguments are refused cleanly", "[cli][hostile]") {
  test::TempDir dir("hostile");
  const std::string data = dir.str("data");
  test::prepare_fixture_corpus(data);
  const std::string out = dir.str("out");
  const std::string good = base_config(data, out);
  int cases = 0;

  // ---- configs: every line made wrong in the ways that apply to it
  struct ConfigCase {
    std::string line, with, subject;  // subject: what the message must name besides the file
  };
  std::vector<ConfigCase> config_cases;
  const auto each = [&](const std::string& line, const std::string& key, const std::string& subject,
                        std::vector<std::string> values) {
    const std::string indent = line.substr(0, line.find_first_not_of(' '));  // the line's own
    for (const auto& v : values) config_cases.push_back({line, indent + key + ": " + v, subject});
  };
  each("  layers: 2", "layers", "layers", {"-1", "0", "x", "[2]", "2.5", "{a: 1}"});
  each("  hidden: 16", "hidden", "model.", {"-16", "0", "x", "17", "[16]"});
  each("  heads: 2", "heads", "heads", {"0", "-2", "x", "3"});
  each("  ffn: 32", "ffn", "ffn", {"0", "x", "-1"});
  each("  context: 16", "context", "context", {"0", "-1", "x", "1e3000"});
  each("  batch_size: 2", "batch_size", "batch_size", {"0", "-1", "x", "1.5", "1000000000"});  // the last: no memory for it
  each("  every: 10", "every", "eval.every", {"0", "-1", "x"});
  each("  batches: 1", "batches", "eval.batches", {"0", "x"});
  each("  log_every: 1", "log_every", "train.log_every", {"0", "x"});
  each("  checkpoint_every: 2", "checkpoint_every", "train.checkpoint_every", {"-1", "x"});
  each("  max_grad_norm: 1.0", "max_grad_norm", "train.max_grad_norm", {"-1", "x"});
  each("  steps: 4", "steps", "baseline.steps", {"0", "-5", "x", "1.5"});
  each("  lr: 3e-3", "lr", "baseline.lr", {"0", "-1", "x", ".inf", "1e308", ".nan", "[1]"});
  each("  warmup: 1", "warmup", "baseline.warmup", {"-1", "x"});
  each("  optimizer: adamw", "optimizer", "baseline.optimizer", {"sgd", "[adamw]"});
  each("    betas: [0.9, 0.95]", "betas", "betas", {"[1.5, 0.9]", "[0.9]", "x", "[0.9, -0.1]"});
  each("    weight_decay: 0.1", "weight_decay", "weight_decay", {"-1", "x"});
  each("    no_decay: [emb]", "no_decay", "no_decay", {"[nothing_matches_this]", "[\"\"]", "x"});
  each("seed: 5", "seed", "seed", {"-1", "x"});
  each("threads: 1", "threads", "threads", {"-1", "x"});
  config_cases.push_back({"seed: 5", "seed: 5\nseed: 6", "seed"});                    // duplicate keys
  config_cases.push_back({"  hidden: 16", "  hidden: 16\n  hidden: 32", "hidden"});
  config_cases.push_back({"  steps: 4", "  steps: 4\n  steps: 8", "steps"});
  config_cases.push_back({"seed: 5", "seed: 5\nbogus: 1", "bogus"});                  // unknown keys
  config_cases.push_back({"  every: 10", "  every: 10\n  bogus: 1", "eval.bogus"});
  config_cases.push_back({"seed: 5", "seed: 5\ndevice: tpu", "device"});
  config_cases.push_back({"seed: 5", "seed: 5\nprecision: fp8", "precision"});
  if (!torch::cuda::is_available()) config_cases.push_back({"seed: 5", "seed: 5\ndevice: cuda", "device"});
  config_cases.push_back({"  train: " + data + "/train.bin", "  train: " + dir.str("nowhere.bin"), "nowhere.bin"});
  config_cases.push_back({"model:", "model: [1, 2]\nunused:", "model"});

  for (size_t i = 0; i < config_cases.size(); ++i) {
    const auto& c = config_cases[i];
    const std::string path = dir.str("c" + std::to_string(i) + ".yaml");
    test::write_text(path, replace_line(good, c.line, c.with));
    const std::string msg = refusal(path, false);
    INFO("config case " << i << ": '" << c.with << "' -> " << msg);
    CHECK_FALSE(msg.empty());
    CHECK_THAT(msg, Catch::Contains(path) && Catch::Contains(c.subject));
    CHECK_FALSE(fs::exists(out));  // nothing written
    fs::remove_all(out);
    ++cases;
  }

  // ---- data files: broken token files in place of the good ones
  const std::string train = read_file(data + "/train.bin");
  std::vector<std::pair<std::string, std::function<void(const std::string&)>>> data_cases = {
      {"empty", [](const std::string& p) { test::write_text(p, ""); }},
      {"odd", [&](const std::string& p) { test::write_text(p, train.substr(0, 1001)); }},
      {"too few tokens", [&](const std::string& p) { test::write_text(p, train.substr(0, 8)); }},
      {"token id past the vocab", [&](const std::string& p) { std::string t = train; t[101] = '\x7f'; test::write_text(p, t); }},
      {"a directory", [](const std::string& p) { fs::create_directory(p); }},
      {"a FIFO", [](const std::string& p) { REQUIRE(::mkfifo(p.c_str(), 0644) == 0); }},
      {"a symlink to a directory", [&](const std::string& p) { fs::create_directory_symlink(dir.str(), p); }},
      {"missing", [](const std::string&) {}},
  };
  for (const std::string which : {"train", "valid"}) {
    for (size_t i = 0; i < data_cases.size(); ++i) {
      const std::string bad = dir.str("bad_" + which + std::to_string(i) + ".bin");
      data_cases[i].second(bad);
      const std::string path = dir.str("d_" + which + std::to_string(i) + ".yaml");
      test::write_text(path, replace_line(good, "  " + which + ": " + data + "/" + which + ".bin", "  " + which + ": " + bad));
      const std::string msg = refusal(path, false);
      INFO("data case " << which << " " << data_cases[i].first << " -> " << msg);
      CHECK_FALSE(msg.empty());
      CHECK_THAT(msg, Catch::Contains(bad));
      CHECK_FALSE(fs::exists(out));
      ++cases;
    }
  }

  // ---- checkpoints: a real run's, damaged in many ways, then resumed (no .prev to fall back to)
  const std::string cfg_path = dir.str("good.yaml");
  test::write_text(cfg_path, good);
  REQUIRE(refusal(cfg_path, false).empty());
  const std::string run = out + "/baseline";
  const std::string ckpt = run + "/checkpoint.ckpt";
  fs::remove(ckpt + ".prev");
  const std::string intact = read_file(ckpt);
  const Checkpoint parsed = load_checkpoint(ckpt);
  const auto with_meta = [&](const std::function<void(nlohmann::json&)>& edit) {
    Checkpoint c = parsed;
    auto meta = nlohmann::json::parse(c.meta_json);
    edit(meta);
    c.meta_json = meta.dump();
    return checkpoint_to_bytes(c);
  };
  std::vector<std::pair<std::string, std::string>> ckpt_cases;  // name, bytes
  for (size_t cut : {size_t(0), size_t(5), size_t(23), size_t(100), intact.size() / 3, intact.size() - 1}) {
    ckpt_cases.push_back({"truncated to " + std::to_string(cut), intact.substr(0, cut)});
  }
  for (size_t at : {size_t(30), intact.size() / 4, intact.size() / 2, intact.size() - 2}) {
    std::string s = intact;
    s[at] ^= 0x10;
    ckpt_cases.push_back({"bit flip at " + std::to_string(at), s});
  }
  ckpt_cases.push_back({"wrong magic", "XXXXXXXX" + intact.substr(8)});
  ckpt_cases.push_back({"version 9", [&] { std::string s = intact; s[8] = 9; return s; }()});
  ckpt_cases.push_back({"trailing bytes", intact + "tail"});
  ckpt_cases.push_back({"phase -1", with_meta([](auto& m) { m["phase"] = -1; })});
  ckpt_cases.push_back({"phase 5", with_meta([](auto& m) { m["phase"] = 5; })});
  ckpt_cases.push_back({"step past the phase", with_meta([](auto& m) { m["step"] = 1000000; })});
  ckpt_cases.push_back({"model level 40", with_meta([](auto& m) { m["model_level"] = 40; })});
  ckpt_cases.push_back({"no phase field", with_meta([](auto& m) { m.erase("phase"); })});
  ckpt_cases.push_back({"phase a string", with_meta([](auto& m) { m["phase"] = "one"; })});
  ckpt_cases.push_back({"another config", with_meta([](auto& m) { m["fingerprint"] = "0-0"; })});
  ckpt_cases.push_back({"metrics past the file", with_meta([](auto& m) { m["metrics_offset"] = 1u << 30; })});
  ckpt_cases.push_back({"negative tokens", with_meta([](auto& m) { m["tokens"] = -1.0; })});
  for (const auto& [name, bytes] : ckpt_cases) {
    write_file_atomic(ckpt, bytes);
    const auto before = snapshot(run);
    const std::string msg = refusal(cfg_path, true);
    INFO("checkpoint case " << name << " -> " << msg);
    CHECK_FALSE(msg.empty());
    CHECK_THAT(msg, Catch::Contains("checkpoint.ckpt") || Catch::Contains("metrics.jsonl"));
    CHECK(snapshot(run) == before);
    ++cases;
  }
  // Not a file at all.
  for (const std::string kind : {"directory", "fifo"}) {
    fs::remove(ckpt);
    if (kind == "directory") fs::create_directory(ckpt);
    else REQUIRE(::mkfifo(ckpt.c_str(), 0644) == 0);
    const auto before = snapshot(run);
    const std::string msg = refusal(cfg_path, true);
    INFO("checkpoint is a " << kind << " -> " << msg);
    CHECK_THAT(msg, Catch::Contains(ckpt) && Catch::Contains(kind == "fifo" ? "FIFO" : "directory"));
    CHECK(snapshot(run) == before);
    fs::remove(ckpt);
    ++cases;
  }
  write_file_atomic(ckpt, intact);

  // ---- command lines (the real program)
  test::write_text(dir.str("tiny.txt"), "far too little text to split\n");
  fs::create_directory(dir.str("adir"));
  REQUIRE(::mkfifo(dir.str("fifo.yaml").c_str(), 0644) == 0);
  struct CliCase {
    std::vector<std::string> args;
    std::string subject;
  };
  const std::vector<CliCase> cli_cases = {
      {{"interpolate", ckpt, ckpt, "--alpha", "", "--out", dir.str("i.ckpt")}, "--alpha"},
      {{"interpolate", ckpt, ckpt, "--alpha", "x", "--out", dir.str("i.ckpt")}, "--alpha"},
      {{"interpolate", ckpt, ckpt, "--alpha", "0.5x", "--out", dir.str("i.ckpt")}, "--alpha"},
      {{"interpolate", ckpt, ckpt, "--alpha", "2", "--out", dir.str("i.ckpt")}, "--alpha"},
      {{"interpolate", ckpt, ckpt, "--out", dir.str("adir")}, dir.str("adir")},
      {{"train", cfg_path, "--set", "phases[-1].lr=1"}, "phases[-1]"},
      {{"train", cfg_path, "--set", "baseline.steps[x]=1"}, "--set baseline.steps[x]=1"},
      {{"train", cfg_path, "--set", "baseline.lr=.inf"}, "--set baseline.lr=.inf"},
      {{"train", cfg_path, "--set", "baseline.lr={"}, "--set baseline.lr={"},
      {{"train", cfg_path, "--set", "model={hidden: 8, hidden: 16}"}, "duplicate key"},
      {{"train", cfg_path, "--set", "seed.x=1"}, "--set seed.x=1"},
      {{"train", cfg_path, "--set", "noequals"}, "--set noequals"},
      {{"train", dir.str("adir")}, "is a directory"},
      {{"train", dir.str("fifo.yaml")}, "is a FIFO"},
      {{"train", cfg_path, "--resume", "--restart"}, "--restart"},
      {{"train", cfg_path, "--nproc", "0"}, "--nproc"},
      {{"prepare", dir.str("tiny.txt"), "--out", dir.str("p")}, "at least"},
      {{"prepare", dir.str("adir"), "--out", dir.str("p")}, "adir"},
      {{"prepare", cfg_path, "--valid-fraction", "2", "--out", dir.str("p")}, "--valid-fraction"},
      {{"coalesce", ckpt, "--config", cfg_path, "--out", dir.str("adir")}, dir.str("adir")},
  };
  for (const auto& c : cli_cases) {
    const auto before = snapshot(dir.str());
    const auto r = test::run_cli(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += " '" + a + "'";
    INFO("vcycle" << shown << "\n-> " << r.exit_code << ": " << r.output);
    CHECK((r.exit_code == 2 || r.exit_code == 3));
    CHECK_THAT(r.output, Catch::Contains(c.subject));
    CHECK(snapshot(dir.str()) == before);
    CHECK_FALSE(fs::exists(dir.str("i.ckpt")));
    CHECK_FALSE(fs::exists(dir.str("p")));
    ++cases;
  }
  CHECK(cases >= 100);
}

TEST_CASE("duplicate YAML keys are errors naming both lines, in the file and in --set", "[config][hostile]") {
  test::TempDir dir("dupkeys");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string good = base_config(dir.str("data"), dir.str("out"));
  test::write_text(dir.str("a.yaml"), replace_line(good, "threads: 1", "threads: 1\nseed: 6"));
  CHECK_THROWS_WITH(load_config(dir.str("a.yaml")),
                    Catch::Contains(dir.str("a.yaml") + ":4") && Catch::Contains("seed") && Catch::Contains("line 2"));
  CHECK_THROWS_WITH(load_config(test::source_path("configs/default.yaml"), {"model={hidden: 64, hidden: 32}"}),
                    Catch::Contains("--set model=") && Catch::Contains("duplicate key 'hidden'"));
  // A value set by --set that the loader refuses is blamed on the argument, not on "file:1".
  test::write_text(dir.str("b.yaml"), good);
  CHECK_THROWS_WITH(load_config(dir.str("b.yaml"), {"baseline.steps=-3"}),
                    Catch::StartsWith("--set baseline.steps=-3") && Catch::Contains("baseline.steps"));
  CHECK_THROWS_WITH(load_config(dir.str("b.yaml"), {"baseline[-1].lr=1"}), Catch::Contains(">= 0") && !Catch::Contains("18446744073709551615"));
}

TEST_CASE("prepare: both built-in corpora extract and tokenize end to end", "[cli][corpus]") {
  test::TempDir dir("corpora");
  for (const std::string corpus : {"austen", "kjv"}) {
    INFO(corpus);
    const auto r = test::run_cli({"prepare", "--corpus", corpus, "--out", dir.str(corpus)});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(fs::file_size(dir.str(corpus + "/train.bin")) > 1000000);
    CHECK(fs::file_size(dir.str(corpus + "/valid.bin")) > 50000);
    const std::string text = read_file(dir.str(corpus + "/" + corpus + ".txt"));
    CHECK_THAT(text, Catch::Contains(corpus == "kjv" ? "In the beginning God created" : "Emma Woodhouse"));
  }
}
