// Reliability through the real command line: one writer per run directory, resume never loses the
// last good checkpoint, clean stops on signals, and outputs never replace what is not a regular file.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/schedules/run_checkpoint.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/metrics.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using namespace vcycle;
using vcycle::test::run_cli;

namespace {

std::string tiny_config(const std::string& data, const std::string& out, int steps) {
  return "name: rel\nseed: 5\nthreads: 1\n"
         "model: { type: gpt, layers: 2, hidden: 16, heads: 2, ffn: 32, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 2 }\n"
         "eval: { every: 10, batches: 1 }\n"
         "train: { log_every: 1, checkpoint_every: 5 }\n"
         "baseline: { steps: " + std::to_string(steps) + ", optimizer: adamw, lr: 3e-3, warmup: 2 }\n"
         "output: " + out + "\n";
}

// Every regular file under `dir` with its bytes (lock files included: nothing may change).
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    // The lock file holds the pid of the latest process that locked the directory: not run state.
    if (e.is_regular_file() && e.path().filename() != ".vcycle.lock") out[e.path().string()] = read_file(e.path().string());
  }
  return out;
}

void wait_for_rows(const std::string& metrics, int rows) {
  for (int i = 0; i < 20000 && test::count_lines(metrics) < rows; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

bool same_model(const std::string& a, const std::string& b) {
  const TensorMap x = checkpoint_model(load_checkpoint(a)), y = checkpoint_model(load_checkpoint(b));
  if (x.size() != y.size()) return false;
  for (const auto& [name, t] : x) {
    if (!y.count(name) || !torch::equal(t, y.at(name))) return false;
  }
  return true;
}

// tiny_config with a 2-level V-cycle of the given phase steps (level 1, 2, 1).
std::string tiny_vcycle_config(const std::string& data, const std::string& out, int baseline_steps,
                               const std::array<int, 3>& steps) {
  return tiny_config(data, out, baseline_steps) + "levels: { count: 2, width_factor: 2, depth_factor: 2 }\n" +
         fmt::format("phases: [ {{ level: 1, steps: {} }}, {{ level: 2, steps: {} }}, {{ level: 1, steps: {} }} ]\n",
                     steps[0], steps[1], steps[2]);
}

// Checks a metrics file is whole rows of JSON in step order (no row twice, no torn row).
void check_metrics_rows(const std::string& path) {
  const std::string text = read_file(path);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  int64_t last_train_step = 0;
  for (const auto& line : read_jsonl_lines(path)) {
    const auto row = nlohmann::json::parse(line);  // throws on a torn or interleaved row
    if (row["type"] == "train") {
      CHECK(row["global_step"].get<int64_t>() == last_train_step + 1);
      last_train_step = row["global_step"].get<int64_t>();
    }
  }
}

}  // namespace

TEST_CASE("two writers started together on one run directory: exactly one proceeds, 20 times", "[cli][reliability]") {
  test::TempDir dir("rel_two");
  test::prepare_fixture_corpus(dir.str("data"));
  // Long enough (40 steps) that the two overlap even when a loaded machine starts them apart.
  test::write_text(dir.str("c.yaml"), tiny_config(dir.str("data"), dir.str("out"), 40));
  int in_use = 0;
  for (int rep = 0; rep < 20; ++rep) {
    INFO("repetition " << rep);
    fs::remove_all(dir.str("out"));
    // Two fresh runs of one config, started at the same moment.
    const test::SpawnedCli a = test::spawn_cli({"train", dir.str("c.yaml"), "--quiet"}, dir.str("a.log"));
    const test::SpawnedCli b = test::spawn_cli({"train", dir.str("c.yaml"), "--quiet"}, dir.str("b.log"));
    const auto ra = test::wait_cli(a), rb = test::wait_cli(b);
    INFO("a: " << ra.output << "\nb: " << rb.output);
    CHECK(((ra.exit_code == 0) + (rb.exit_code == 0)) == 1);  // exactly one proceeds
    const auto& loser = ra.exit_code == 0 ? rb : ra;
    CHECK(loser.exit_code == 2);
    const bool locked_out = loser.output.find("is in use by pid") != std::string::npos;
    // The other is refused by the lock, or (had it come after the winner ended) by the finished run.
    CHECK((locked_out || loser.output.find("already holds a run") != std::string::npos));
    if (locked_out) {
      ++in_use;
      CHECK_THAT(loser.output, Catch::Contains(dir.str("out/baseline")));
    }
    check_metrics_rows(dir.str("out/baseline/metrics.jsonl"));
  }
  CHECK(in_use >= 5);  // the lock, not luck, kept them apart
}

TEST_CASE("SIGTERM / SIGINT / SIGHUP stop after the step with a checkpoint, a second signal at once", "[cli][reliability]") {
  test::TempDir dir("rel_signal");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("a.yaml"), tiny_config(dir.str("data"), dir.str("a"), 60));
  test::write_text(dir.str("b.yaml"), tiny_config(dir.str("data"), dir.str("b"), 60));
  REQUIRE(run_cli({"train", dir.str("a.yaml"), "--quiet"}).exit_code == 0);

  const std::string metrics = dir.str("b/baseline/metrics.jsonl");
  int stops = 0;
  for (const auto& [sig, rows] : std::vector<std::pair<int, int>>{{SIGTERM, 8}, {SIGINT, 30}, {SIGHUP, 55}}) {
    INFO("signal " << sig);
    const test::SpawnedCli s = test::spawn_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"}, dir.str("s.log"));
    wait_for_rows(metrics, rows);
    ::kill(s.pid, sig);
    const auto r = test::wait_cli(s);
    INFO(r.output);
    if (r.exit_code == 0) continue;  // finished before the signal came
    ++stops;
    CHECK(r.exit_code == 128 + sig);
    CHECK_THAT(r.output, Catch::Contains("stopped at phase 1 step") && Catch::Contains("continue with --resume"));
    CHECK_NOTHROW(load_checkpoint(dir.str("b/baseline/checkpoint.ckpt")));
  }
  CHECK(stops >= 2);
  const auto last = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
  INFO(last.output);
  REQUIRE(last.exit_code == 0);
  CHECK(same_model(dir.str("a/baseline/checkpoint.ckpt"), dir.str("b/baseline/checkpoint.ckpt")));
  check_metrics_rows(metrics);

  // Two signals: the second does not wait for the step.
  // A model whose step takes long (about a second on one thread) so that the second signal surely
  // lands while the first one's step is still running.
  std::string slow = tiny_config(dir.str("data"), dir.str("c"), 100000);
  slow.replace(slow.find("hidden: 16, heads: 2, ffn: 32"), 29, "hidden: 256, heads: 4, ffn: 1024");
  slow.replace(slow.find("batch_size: 2"), 13, "batch_size: 64");
  test::write_text(dir.str("c.yaml"), slow);
  const test::SpawnedCli s = test::spawn_cli({"train", dir.str("c.yaml"), "--quiet"}, dir.str("c.log"));
  wait_for_rows(dir.str("c/baseline/metrics.jsonl"), 1);  // the initial evaluation: training has begun
  ::kill(s.pid, SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // delivered, not merged with the next
  ::kill(s.pid, SIGTERM);
  const auto twice = test::wait_cli(s);
  INFO(twice.output);
  CHECK(twice.signal == SIGTERM);  // ended by the signal itself, not after a checkpoint
}

TEST_CASE("resume falls back to checkpoint.ckpt.prev when the newest is missing or damaged", "[cli][reliability]") {
  test::TempDir dir("rel_prev");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("a.yaml"), tiny_config(dir.str("data"), dir.str("a"), 40));
  REQUIRE(run_cli({"train", dir.str("a.yaml"), "--quiet"}).exit_code == 0);
  const std::string run = dir.str("a/baseline");
  const std::string ckpt = run + "/checkpoint.ckpt";
  // An unfinished run: stop it by hand at step 10 (checkpoint) and 15 (.prev is then 10's).
  test::write_text(dir.str("b.yaml"), tiny_config(dir.str("data"), dir.str("b"), 40));
  const std::string b = dir.str("b/baseline");
  const test::SpawnedCli s = test::spawn_cli({"train", dir.str("b.yaml"), "--quiet"}, dir.str("b.log"));
  wait_for_rows(b + "/metrics.jsonl", 14);
  ::kill(s.pid, SIGTERM);
  const auto stopped = test::wait_cli(s);
  INFO(stopped.output);
  REQUIRE(stopped.exit_code == 143);
  REQUIRE(fs::exists(b + "/checkpoint.ckpt.prev"));
  const auto saved = snapshot(b);
  fs::copy(b, dir.str("pristine"), fs::copy_options::recursive);
  // Each case starts from the stopped run (the cases are sections of one setup, run in turn).
  const auto reset = [&] {
    fs::remove_all(b);
    fs::copy(dir.str("pristine"), b, fs::copy_options::recursive);
    REQUIRE(snapshot(b).size() == saved.size());
  };

  {
    reset();
    INFO("newest damaged: resumes from .prev, says so, keeps the damaged file as .bad, ends as the uninterrupted run");
    std::string bytes = read_file(b + "/checkpoint.ckpt");
    bytes[bytes.size() / 2] ^= 0x5a;
    test::write_text(b + "/checkpoint.ckpt", bytes);
    const auto r = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("resuming from") && Catch::Contains("checkpoint.ckpt.prev") &&
                             Catch::Contains("checksum mismatch"));
    CHECK(read_file(b + "/checkpoint.ckpt.bad") == bytes);
    int resume_rows = 0;
    for (const auto& line : read_jsonl_lines(b + "/metrics.jsonl")) {
      const auto row = nlohmann::json::parse(line);
      if (row["type"] != "resume") continue;
      ++resume_rows;
      CHECK_THAT(row["file"].get<std::string>(), Catch::EndsWith("checkpoint.ckpt.prev"));
      CHECK_THAT(row["reason"].get<std::string>(), Catch::Contains("checksum"));
    }
    CHECK(resume_rows == 1);
    CHECK(same_model(ckpt, b + "/checkpoint.ckpt"));
  }
  {
    reset();
    INFO("newest missing: resumes from .prev");
    fs::remove(b + "/checkpoint.ckpt");
    const auto r = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("checkpoint.ckpt.prev") && Catch::Contains("missing"));
    CHECK(same_model(ckpt, b + "/checkpoint.ckpt"));
  }
  {
    reset();
    INFO("both damaged: exit 2 naming both, nothing changed");
    for (const char* name : {"/checkpoint.ckpt", "/checkpoint.ckpt.prev"}) {
      std::string bytes = read_file(b + name);
      bytes.resize(bytes.size() / 2);
      test::write_text(b + name, bytes);
    }
    const auto before = snapshot(b);
    const auto r = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("checkpoint.ckpt:") && Catch::Contains("checkpoint.ckpt.prev:"));
    CHECK(snapshot(b) == before);
  }
  {
    reset();
    INFO("a run directory is restarted only with --restart");
    const auto r = run_cli({"train", dir.str("b.yaml"), "--quiet"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("already holds a run") && Catch::Contains("--resume") && Catch::Contains("--restart"));
    CHECK(snapshot(b) == saved);
    const auto both = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume", "--restart"});
    CHECK(both.exit_code == 2);
    CHECK(snapshot(b) == saved);
    const auto restarted = run_cli({"train", dir.str("b.yaml"), "--quiet", "--restart"});
    INFO(restarted.output);
    REQUIRE(restarted.exit_code == 0);
    CHECK_FALSE(fs::exists(b + "/checkpoint.ckpt.bad"));
    CHECK(same_model(ckpt, b + "/checkpoint.ckpt"));
    CHECK(read_jsonl_lines(b + "/metrics.jsonl").size() == read_jsonl_lines(run + "/metrics.jsonl").size());
  }
  {
    reset();
    INFO("changed data: exit 2 naming the file, unless --allow-data-change");
    const std::string original = read_file(dir.str("data/valid.bin"));
    std::string valid = original;
    valid[valid.size() / 2] = valid[valid.size() / 2] == 'e' ? 'a' : 'e';
    test::write_text(dir.str("data/valid.bin"), valid);
    const auto r = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("valid.bin") && Catch::Contains("changed") && Catch::Contains("--allow-data-change"));
    CHECK(snapshot(b) == saved);
    const auto allowed = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume", "--allow-data-change"});
    INFO(allowed.output);
    CHECK(allowed.exit_code == 0);
    test::write_text(dir.str("data/valid.bin"), original);
  }
  {
    reset();
    INFO("a checkpoint with a valid checksum but an impossible position: exit 2 naming the field, nothing changed");
    fs::remove(b + "/checkpoint.ckpt.prev");  // no fallback: the position check itself is under test
    const Checkpoint good = load_checkpoint(b + "/checkpoint.ckpt");
    struct Edit {
      const char* field;
      nlohmann::json value;
    };
    for (const Edit& e : {Edit{"phase", -1}, Edit{"phase", 7}, Edit{"step", 100000}, Edit{"step", -3},
                          Edit{"model_level", 9}, Edit{"model_level", 0}, Edit{"global_step", -1}, Edit{"tokens", -5.0}}) {
      INFO("field " << e.field << " = " << e.value.dump());
      Checkpoint edited = good;
      auto meta = nlohmann::json::parse(edited.meta_json);
      meta[e.field] = e.value;
      edited.meta_json = meta.dump();
      write_file_atomic(b + "/checkpoint.ckpt", checkpoint_to_bytes(edited));
      const auto before = snapshot(b);
      const auto r = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
      INFO(r.output);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.output, Catch::Contains(std::string("'") + e.field + "'"));
      CHECK(snapshot(b) == before);
    }
  }
  {
    reset();
    INFO("metrics that do not end a row where the checkpoint says: exit 2, nothing changed");
    std::string m = read_file(b + "/metrics.jsonl");
    const auto meta = nlohmann::json::parse(load_checkpoint(b + "/checkpoint.ckpt").meta_json);
    const auto offset = meta["metrics_offset"].get<size_t>();
    m[offset - 1] = ' ';
    test::write_text(b + "/metrics.jsonl", m);
    fs::remove(b + "/checkpoint.ckpt.prev");
    const auto before = snapshot(b);
    const auto r = run_cli({"train", dir.str("b.yaml"), "--quiet", "--resume"});
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains("metrics.jsonl") && Catch::Contains("does not end a row"));
    CHECK(snapshot(b) == before);
  }
}

TEST_CASE("outputs never replace a directory, FIFO, symlink or device", "[cli][reliability]") {
  test::TempDir dir("rel_out");
  Checkpoint c;
  c.meta_json = R"({"level": 1})";
  c.tensors["model/w"] = torch::ones({2, 2});
  save_checkpoint(dir.str("m.ckpt"), c);
  REQUIRE(::mkfifo(dir.str("fifo").c_str(), 0644) == 0);
  fs::create_directory(dir.str("adir"));
  test::write_text(dir.str("target"), "keep me");
  fs::create_symlink(dir.str("target"), dir.str("link"));
  for (const std::string name : {"fifo", "adir", "link"}) {
    INFO(name);
    const auto before = snapshot(dir.str());
    const auto r = run_cli({"interpolate", dir.str("m.ckpt"), dir.str("m.ckpt"), "--out", dir.str(name)});
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains(dir.str(name)) && Catch::Contains("not a regular file"));
    CHECK(snapshot(dir.str()) == before);
    CHECK(fs::symlink_status(dir.str(name)).type() != fs::file_type::regular);
  }
  // The writer itself, for every caller (here a checkpoint save onto a device node).
  CHECK_THROWS_WITH(write_file_atomic("/dev/null", "x"), Catch::Contains("/dev/null") && Catch::Contains("character device"));
  CHECK_THROWS_WITH(save_checkpoint(dir.str("adir"), c), Catch::Contains("adir") && Catch::Contains("a directory"));
  CHECK(fs::is_character_file("/dev/null"));
}

TEST_CASE("the experiment directory has one writer: vcycle report is refused while another process holds it",
          "[cli][reliability]") {
  test::TempDir dir("rel_report");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), tiny_vcycle_config(dir.str("data"), dir.str("out"), 6, {2, 2, 2}));
  const auto run = run_cli({"run", dir.str("c.yaml"), "--quiet"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  // Another process holds the experiment directory (as a live `vcycle run` does): flock(1) takes the
  // same flock(2) lock and writes its pid where vcycle's lock file keeps it.
  const std::string lock = dir.str("out/.vcycle.lock");
  const test::SpawnedCli holder{::fork(), ""};
  REQUIRE(holder.pid >= 0);
  if (holder.pid == 0) {
    ::execlp("flock", "flock", lock.c_str(), "sh", "-c", ("echo 4242 > " + lock + "; sleep 3").c_str(), (char*)nullptr);
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto before = snapshot(dir.str("out"));
  const auto refused = run_cli({"report", dir.str("out")});
  INFO(refused.output);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains(dir.str("out")) && Catch::Contains("is in use by pid 4242"));
  int status = 0;
  ::waitpid(holder.pid, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(snapshot(dir.str("out")) == before);
  // Once the holder is gone the report is written again.
  const auto again = run_cli({"report", dir.str("out")});
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("Target loss L*"));
}

TEST_CASE("a stopped study keeps its sub-run's checkpoint and continues with --resume", "[cli][reliability]") {
  test::TempDir dir("rel_study");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), tiny_vcycle_config(dir.str("data"), dir.str("out"), 60, {10, 20, 20}));
  const std::vector<std::string> study = {"study", dir.str("c.yaml"), "--budgets", "1", "--baseline-lrs", "3e-3", "--quiet"};
  const std::string metrics = dir.str("out/study/b1/s5/baseline-lr0.003/metrics.jsonl");
  const test::SpawnedCli s = test::spawn_cli(study, dir.str("s.log"));
  wait_for_rows(metrics, 20);
  ::kill(s.pid, SIGTERM);
  const auto stopped = test::wait_cli(s);
  INFO(stopped.output);
  REQUIRE(stopped.exit_code == 128 + SIGTERM);
  CHECK_THAT(stopped.output, Catch::Contains("stopped at phase 1 step") && Catch::Contains("continue with --resume"));
  const int64_t step = load_run_checkpoint(dir.str("out/study/b1/s5/baseline-lr0.003/checkpoint.ckpt")).state.global_step;
  CHECK(step > 0);  // the stop wrote a checkpoint where it stopped, not only the one at step 0
  auto resume = study;
  resume.push_back("--resume");
  const auto done = run_cli(resume);
  INFO(done.output);
  CHECK(done.exit_code == 0);
  CHECK(load_run_checkpoint(dir.str("out/study/b1/s5/baseline-lr0.003/checkpoint.ckpt")).state.global_step == 60);
  check_metrics_rows(metrics);  // one row per step: the resumed run continued where the stop left it
}
