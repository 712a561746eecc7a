// Data-parallel runs over c10d/Gloo on loopback (src/core/distributed.cpp, the runner's sharding):
// 2 processes give the parameters of one process with the same global batch; a killed worker makes
// the survivor fail fast with a message naming its rank and the operation; --resume finishes the run.
//
// Tolerance: 1e-5 relative over all parameters (‖θ₂ − θ₁‖ / ‖θ₁‖), and per tensor
// ‖Δ‖ ≤ 1e-5·max(‖θ‖, 1). The ranks add the same per-row gradients in another order (partial sums +
// an all-reduce instead of one sum), so fp32 rounding differs at ~1e-7 per step; measured: 2e-7
// overall, ~1e-7 for every tensor but one. The exception is the attention's key bias (the middle
// third of qkv.bias): softmax is invariant to it, so its gradient is mathematically zero and in
// practice roundoff noise, which AdamW normalises into lr-sized steps — it stays at norm ~1e-6 in
// both runs, with noise-sized differences (~2e-6 absolute), hence the floor of 1 on the norm.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/config/run_config.h"
#include "vcycle/models/registry.h"
#include "vcycle/core/distributed.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"
#include "vcycle/core/metrics.h"
#include "vcycle/schedules/run_checkpoint.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// A tiny 2-level V-cycle whose phases split their global batch in the three ways a 2-rank run can:
// whole micro-batches per rank (level-1 down: 2 × 3 rows), rows of one micro-batch (level 2: 1 × 4)
// and a micro-batch shared by both ranks (level-1 up: 3 × 2 rows, rank 0 takes micro 0 + row 0 of 1).
std::string dist_config(const std::string& data, const std::string& out, const std::string& extra = "") {
  // precision: fp32, because the runs are compared to fp32 rounding (auto is bf16 on some CPUs).
  return "name: dist\nseed: 3\nthreads: 1\nprecision: fp32\n"
         "model: { type: gpt, layers: 2, hidden: 32, heads: 4, head_size: 8, ffn: 64, context: 16 }\n"
         "data: { train: " + data + "/train.bin, valid: " + data + "/valid.bin, batch_size: 3, grad_accum: 2 }\n"
         "levels: { count: 2, width_factor: 2, depth_factor: 2, optimizer_state: project }\n"
         "phases:\n"
         "  - { level: 1, steps: 8, optimizer: adamw, lr: 3e-3, warmup: 2 }\n"
         "  - { level: 2, steps: 8, optimizer: adamw, lr: 3e-3, batch_size: 4, grad_accum: 1 }\n"
         "  - { level: 1, steps: 10, optimizer: adamw, lr: 2e-3, batch_size: 2, grad_accum: 3 }\n"
         "eval: { every: 4, batches: 3 }\n"
         "train: { log_every: 1, checkpoint_every: 3, max_grad_norm: 0.5 }\n"
         "distributed: { backend: gloo, timeout_s: 5" + extra + " }\n"
         "output: " + out + "\n";
}

void check_same_params(const std::string& a_ckpt, const std::string& b_ckpt) {
  const TensorMap a = checkpoint_model(load_checkpoint(a_ckpt)), b = checkpoint_model(load_checkpoint(b_ckpt));
  REQUIRE(a.size() == b.size());
  REQUIRE(!a.empty());
  double diff2 = 0, norm2 = 0;
  for (const auto& [name, t] : a) {
    INFO(name);
    REQUIRE(b.count(name) == 1);
    const auto& u = b.at(name);
    REQUIRE(t.sizes() == u.sizes());
    const double diff = (t - u).norm().item<double>(), norm = t.norm().item<double>();
    CHECK(diff <= 1e-5 * std::max(norm, 1.0));
    diff2 += diff * diff;
    norm2 += norm * norm;
  }
  const double rel = std::sqrt(diff2 / norm2);
  INFO("relative parameter difference " << rel);
  CHECK(rel <= 1e-5);
}

json last_eval(const std::string& metrics) {
  json last;
  for (const auto& line : read_jsonl_lines(metrics)) {
    auto row = json::parse(line);
    if (row["type"] == "eval") last = row;
  }
  return last;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Starts one worker of a `world`-rank group the way torchrun would (environment variables).
pid_t spawn_worker(int rank, int world, int port, const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    static const std::string cli = VCYCLE_CLI_PATH;
    std::vector<char*> argv{const_cast<char*>(cli.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    ::dup2(fileno(stdout), 2);
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    ::execv(cli.c_str(), argv.data());
    std::_Exit(127);
  }
  return pid;
}

// Waits for `pid` at most `limit_s` seconds (SIGKILLs it after that); returns the exit code, -1 if
// it did not exit normally, and the seconds it took.
std::pair<int, double> wait_for(pid_t pid, double limit_s) {
  const auto t0 = Clock::now();
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::duration<double>(Clock::now() - t0).count() > limit_s) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return {-1, limit_s};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::chrono::duration<double>(Clock::now() - t0).count()};
}

// The children of `parent` (from /proc).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat;
    try {
      stat = read_file(e.path().string() + "/stat");
    } catch (const std::exception&) {
      continue;
    }
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

}  // namespace

TEST_CASE("dist: distributed config keys are validated and named in errors", "[dist][config]") {
  test::TempDir dir("distcfg");
  test::prepare_fixture_corpus(dir.str("data"));
  const std::string path = dir.str("c.yaml");
  auto error_of = [&](const std::string& extra_or_replacement, bool replace_section) {
    std::string text = dist_config(dir.str("data"), dir.str("out"));
    if (replace_section) {
      const auto at = text.find("distributed:");
      text.replace(at, text.find('\n', at) - at, extra_or_replacement);
    }
    test::write_text(path, text);
    try {
      load_config(path);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of("", false) == "no error");
  const RunConfig cfg = load_config(path);
  CHECK(cfg.distributed.backend == "gloo");
  CHECK(cfg.distributed.timeout_s == 5);
  CHECK(cfg.distributed.bucket_mb == 25);
  CHECK_THAT(error_of("distributed: { backend: mpi }", true),
             Catch::Contains("distributed.backend") && Catch::Contains("mpi") && Catch::Contains("gloo, nccl"));
  CHECK_THAT(error_of("distributed: { backend: nccl }", true),
             Catch::Contains("distributed.backend") && Catch::Contains("cuda"));
  CHECK_THAT(error_of("distributed: { timeout_s: -1 }", true), Catch::Contains("distributed.timeout_s"));
  CHECK_THAT(error_of("distributed: { bucket_mb: 0 }", true), Catch::Contains("distributed.bucket_mb"));
  CHECK_THAT(error_of("distributed: { timout_s: 3 }", true), Catch::Contains("distributed") && Catch::Contains("timout_s"));
  // The section does not enter the fingerprint: a run may resume with other distributed settings.
  test::write_text(path, dist_config(dir.str("data"), dir.str("out")));
  CHECK(config_fingerprint(load_config(path, {"distributed.timeout_s=9"}), cfg.phases) ==
        config_fingerprint(cfg, cfg.phases));
}

TEST_CASE("dist: --nproc 0 and an uneven batch split are rejected", "[dist][cli]") {
  test::TempDir dir("distargs");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), dist_config(dir.str("data"), dir.str("out")));
  const auto zero = test::run_cli({"run", dir.str("c.yaml"), "--no-baseline", "--nproc", "0"});
  CHECK(zero.exit_code == 2);
  CHECK_THAT(zero.output, Catch::Contains("--nproc must be >= 1"));
  // Level 2's global batch of 4 rows does not split over 3 ranks.
  const auto three = test::run_cli({"run", dir.str("c.yaml"), "--quiet", "--no-baseline", "--nproc", "3"});
  CHECK(three.exit_code == 2);
  CHECK_THAT(three.output, Catch::Contains("does not split evenly over 3 ranks"));
  CHECK_FALSE(std::filesystem::exists(dir.str("out/vcycle/checkpoint.ckpt")));
}

TEST_CASE("dist: the single-process context communicates nothing, and --nproc is stripped for workers", "[dist]") {
  DistContext single;
  CHECK(single.world() == 1);
  CHECK(single.is_main());
  CHECK_FALSE(single.distributed());
  CHECK(single.device_for("cuda") == "cuda");
  // Single process: collectives are identities.
  auto t = torch::ones({3});
  single.all_reduce_sum({t}, "x");
  CHECK(torch::equal(t, torch::ones({3})));
  CHECK(single.all_reduce_sum(std::vector<double>{1.5, 2}, "y") == std::vector<double>{1.5, 2});
  CHECK(single.broadcast_bytes("abc", "z") == "abc");
  CHECK(strip_nproc_argument({"run", "c.yaml", "--nproc", "2", "--quiet", "--nproc=3"}) ==
        std::vector<std::string>{"run", "c.yaml", "--quiet"});
}

TEST_CASE("dist: 2 processes over Gloo equal 1 process with the same global batch, also after kill + --resume", "[dist][cli]") {
  test::TempDir dir("dist");
  test::prepare_fixture_corpus(dir.str("data"));
  for (const char* run : {"one", "two", "kill"}) {
    test::write_text(dir.str(std::string(run) + ".yaml"), dist_config(dir.str("data"), dir.str(run)));
  }

  // The reference: one process.
  const auto one = test::run_cli({"run", dir.str("one.yaml"), "--quiet", "--no-baseline"});
  INFO(one.output);
  REQUIRE(one.exit_code == 0);

  SECTION("--nproc 2 gives the single-process parameters, tokens and FLOPs") {
    const auto two = test::run_cli({"run", dir.str("two.yaml"), "--quiet", "--no-baseline", "--nproc", "2"});
    INFO(two.output);
    REQUIRE(two.exit_code == 0);
    check_same_params(dir.str("one/vcycle/checkpoint.ckpt"), dir.str("two/vcycle/checkpoint.ckpt"));
    const json a = last_eval(dir.str("one/vcycle/metrics.jsonl")), b = last_eval(dir.str("two/vcycle/metrics.jsonl"));
    CHECK(a["tokens"] == b["tokens"]);  // all ranks' tokens are counted
    CHECK(a["global_step"] == b["global_step"]);
    // Operators ran on both ranks: their FLOPs count twice; model FLOPs are the same work.
    CHECK(b["op_flops"].get<double>() == 2 * a["op_flops"].get<double>());
    CHECK(b["train_flops"].get<double>() - b["op_flops"].get<double>() ==
          Approx(a["train_flops"].get<double>() - a["op_flops"].get<double>()).epsilon(1e-12));
    CHECK(b["val_loss"].get<double>() == Approx(a["val_loss"].get<double>()).epsilon(1e-5));
    // Rank 0 alone wrote the output directory: one metrics file, rows not duplicated.
    CHECK(read_jsonl_lines(dir.str("two/vcycle/metrics.jsonl")).size() ==
          read_jsonl_lines(dir.str("one/vcycle/metrics.jsonl")).size());
  }

  SECTION("a SIGKILLed worker makes the other exit 3 within the timeout; --resume completes the run") {
    const int port = free_port();
    const std::vector<std::string> args{"run", dir.str("kill.yaml"), "--quiet", "--no-baseline"};
    const std::string log0 = dir.str("rank0.log"), log1 = dir.str("rank1.log");
    const pid_t r0 = spawn_worker(0, 2, port, args, log0);
    const pid_t r1 = spawn_worker(1, 2, port, args, log1);
    // Kill rank 1 once rank 0 has logged some training (mid level 1 or later).
    const std::string metrics = dir.str("kill/vcycle/metrics.jsonl");
    const auto t0 = Clock::now();
    while (test::count_lines(metrics) < 12 && std::chrono::duration<double>(Clock::now() - t0).count() < 120) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(test::count_lines(metrics) >= 12);
    ::kill(r1, SIGKILL);
    int status = 0;
    ::waitpid(r1, &status, 0);
    // timeout_s is 5: a dead peer is noticed at once (connection reset) or after the timeout.
    const auto [code, seconds] = wait_for(r0, 5 + 25);
    const std::string out0 = read_file(log0);
    INFO(out0);
    CHECK(code == 3);
    CHECK(seconds < 5 + 25);
    CHECK_THAT(out0, Catch::Contains("rank 0 of 2") && Catch::Contains("failed") && Catch::Contains("--resume"));
    CHECK_THAT(out0, Catch::Contains("all-reduce") || Catch::Contains("broadcast") || Catch::Contains("barrier"));

    const auto resumed = test::run_cli({"run", dir.str("kill.yaml"), "--quiet", "--no-baseline", "--resume", "--nproc", "2"});
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    check_same_params(dir.str("one/vcycle/checkpoint.ckpt"), dir.str("kill/vcycle/checkpoint.ckpt"));
    CHECK(last_eval(dir.str("one/vcycle/metrics.jsonl"))["tokens"] == last_eval(metrics)["tokens"]);
  }

  SECTION("--resume with another world size (1 process) finishes a 2-process run") {
    test::write_text(dir.str("mixed.yaml"), dist_config(dir.str("data"), dir.str("mixed")));
    const std::string metrics = dir.str("mixed/vcycle/metrics.jsonl");
    // The launcher: kill one of its workers; it stops the other and names the failed rank.
    const pid_t launcher = ::fork();
    if (launcher == 0) {
      static const std::string cli = VCYCLE_CLI_PATH;
      const std::string cfg = dir.str("mixed.yaml"), log = dir.str("launcher.log");
      FILE* f = std::freopen(log.c_str(), "w", stdout);
      (void)f;
      ::dup2(fileno(stdout), 2);
      ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
      ::execl(cli.c_str(), cli.c_str(), "run", cfg.c_str(), "--quiet", "--no-baseline", "--nproc", "2", nullptr);
      std::_Exit(127);
    }
    const auto t0 = Clock::now();
    while (test::count_lines(metrics) < 20 && std::chrono::duration<double>(Clock::now() - t0).count() < 120) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto workers = children_of(launcher);
    REQUIRE(workers.size() == 2);
    ::kill(workers[1], SIGKILL);
    const auto [code, seconds] = wait_for(launcher, 30);
    const std::string out = read_file(dir.str("launcher.log"));
    INFO(out);
    CHECK(code == 3);
    // The killed worker, or the survivor if the launcher reaped it first.
    CHECK_THAT(out, Catch::Contains("worker rank") && Catch::Contains("of 2") && Catch::Contains("--resume"));

    const auto resumed = test::run_cli({"run", dir.str("mixed.yaml"), "--quiet", "--no-baseline", "--resume"});
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    check_same_params(dir.str("one/vcycle/checkpoint.ckpt"), dir.str("mixed/vcycle/checkpoint.ckpt"));
  }
}

TEST_CASE("dist: a worker that stops answering makes the other fail after distributed.timeout_s", "[dist][cli]") {
  test::TempDir dir("disthang");
  test::prepare_fixture_corpus(dir.str("data"));
  test::write_text(dir.str("c.yaml"), dist_config(dir.str("data"), dir.str("out")));
  const int port = free_port();
  const std::vector<std::string> args{"run", dir.str("c.yaml"), "--quiet", "--no-baseline"};
  const pid_t r0 = spawn_worker(0, 2, port, args, dir.str("rank0.log"));
  const pid_t r1 = spawn_worker(1, 2, port, args, dir.str("rank1.log"));
  const std::string metrics = dir.str("out/vcycle/metrics.jsonl");
  const auto t0 = Clock::now();
  while (test::count_lines(metrics) < 8 && std::chrono::duration<double>(Clock::now() - t0).count() < 120) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(test::count_lines(metrics) >= 8);
  ::kill(r1, SIGSTOP);  // alive but silent: no connection reset, only the timeout can tell
  const auto [code, seconds] = wait_for(r0, 5 + 25);
  ::kill(r1, SIGKILL);
  ::kill(r1, SIGCONT);
  int status = 0;
  ::waitpid(r1, &status, 0);
  const std::string out = read_file(dir.str("rank0.log"));
  INFO(out);
  CHECK(code == 3);
  CHECK(seconds >= 4.0);  // the configured 5 s, not an early give-up
  CHECK(seconds < 5 + 25);
  CHECK_THAT(out, Catch::Contains("rank 0 of 2") && Catch::Contains("Timed out") && Catch::Contains("--resume"));
}

// Run as a separate process by the next test (hidden: "[.]"), with RANK / WORLD_SIZE / MASTER_* set.
TEST_CASE("dist worker: bucketed collectives over 2 ranks", "[.][dist-worker]") {
  DistributedConfig cfg;
  cfg.timeout_s = 30;
  const DistContext d = DistContext::init_from_env(cfg, "cpu");
  REQUIRE(d.world() == 2);
  const double r = d.rank();
  // Mixed dtypes, a tensor larger than the 1 KiB buckets (its own bucket, reduced in place) and a
  // non-contiguous one (flattened and copied back).
  std::vector<torch::Tensor> ts{torch::full({5, 7}, r + 1), torch::full({3}, r + 1, torch::kDouble),
                                torch::arange(1000, torch::kFloat) * (r + 1), torch::full({4, 6}, r + 1).t(),
                                torch::full({4}, static_cast<int64_t>(r) + 1, torch::kLong), torch::full({2}, r + 1)};
  std::vector<torch::Tensor> want;
  for (const auto& t : ts) want.push_back(t / (r + 1) * 3);  // 1 + 2
  d.all_reduce_sum(ts, "the test tensors", 1024);
  for (size_t i = 0; i < ts.size(); ++i) {
    INFO("tensor " << i);
    CHECK(torch::equal(ts[i], want[i].to(ts[i].scalar_type())));
  }
  CHECK(d.all_reduce_sum(std::vector<double>{r, 0.5}, "doubles") == std::vector<double>{1, 1});
  std::vector<torch::Tensor> bc{torch::full({6}, r), torch::full({3, 3}, r * 2).t()};
  d.broadcast(bc, "the broadcast tensors");
  CHECK(torch::equal(bc[0], torch::zeros({6})));
  CHECK(torch::equal(bc[1], torch::zeros({3, 3})));
  CHECK(d.broadcast_bytes(d.is_main() ? std::string("hello\0world", 11) : std::string(), "bytes") ==
        std::string("hello\0world", 11));
  CHECK(d.broadcast_int(d.is_main() ? 42 : -1, "an int") == 42);
  d.check_same(7, "a shared value");
  CHECK_THROWS_WITH(d.check_same(d.rank(), "the rank"), Catch::Contains("disagree on the rank"));
  d.barrier("the last barrier");
}

TEST_CASE("dist: bucketed all-reduce, broadcast and checks over 2 Gloo ranks", "[dist]") {
  test::TempDir dir("distworker");
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  REQUIRE(n > 0);
  self[n] = '\0';
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 2; ++rank) {
    const std::string log = dir.str("w" + std::to_string(rank) + ".log");
    const pid_t pid = ::fork();
    if (pid == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stdout);
      (void)f;
      ::dup2(fileno(stdout), 2);
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", "2", 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::execl(self, self, "[dist-worker]", nullptr);
      std::_Exit(127);
    }
    pids.push_back(pid);
  }
  for (int rank = 0; rank < 2; ++rank) {
    const auto [code, seconds] = wait_for(pids[static_cast<size_t>(rank)], 60);
    INFO(read_file(dir.str("w" + std::to_string(rank) + ".log")));
    CHECK(code == 0);
  }
}
