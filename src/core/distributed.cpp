// Data-parallel collectives over c10d and the local launcher; see include/vcycle/core/distributed.h.
//
// Gradient all-reduce is bucketed but not overlapped with backward. Overlap needs per-parameter
// autograd hooks that fire on the *last* micro-batch's backward only and DDP-style bucket
// readiness bookkeeping (c10d::Reducer); with gradient accumulation and row shards of unequal
// micro-batch counts that bookkeeping is the bulk of DDP. On the Gloo/CPU target the all-reduce
// of one bucketed step is a small share of a step; the reducer is the path to take on GPU.
#include "c10d_compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "vcycle/core/errors.h"

namespace vcycle {

namespace {

// ---------------------------------------------------------------------------- environment
std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, int fallback, int min_value) {
  const auto v = env(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    const long x = std::stol(*v, &used);
    if (used != v->size() || x < min_value || x > 1 << 20) throw std::invalid_argument("range");
    return static_cast<int>(x);
  } catch (const std::exception&) {
    throw InputError(fmt::format("environment variable {}='{}' must be an integer >= {}", name, *v, min_value));
  }
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

std::string describe(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

// ---------------------------------------------------------------------------- rendezvous
DistContext DistContext::init_from_env(const DistributedConfig& cfg, const std::string& device) {
  DistContext ctx;
  ctx.world_ = env_int("WORLD_SIZE", 1, 1);
  if (ctx.world_ == 1) return ctx;
  ctx.rank_ = env_int("RANK", -1, 0);
  if (ctx.rank_ < 0) throw InputError("WORLD_SIZE is set but RANK is not (set both, as torchrun does, or use --nproc)");
  if (ctx.rank_ >= ctx.world_) {
    throw InputError(fmt::format("RANK={} must be below WORLD_SIZE={}", ctx.rank_, ctx.world_));
  }
  ctx.local_rank_ = env_int("LOCAL_RANK", ctx.rank_, 0);
  const std::string addr = env("MASTER_ADDR").value_or("127.0.0.1");
  const int port = env_int("MASTER_PORT", 29500, 1);
  if (port > 65535) throw InputError(fmt::format("MASTER_PORT={} is not a port number", port));

  const bool cuda = device.rfind("cuda", 0) == 0;
  ctx.backend_ = cfg.backend.empty() ? (cuda ? "nccl" : "gloo") : cfg.backend;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.timeout_s * 1000));

  auto group = std::make_shared<Group>();
  try {
    c10d::TCPStoreOptions store_opts;
    store_opts.port = static_cast<uint16_t>(port);
    store_opts.isServer = ctx.rank_ == 0;
    store_opts.numWorkers = static_cast<size_t>(ctx.world_);
    store_opts.waitWorkers = true;
    store_opts.timeout = timeout;
    group->store = c10::make_intrusive<c10d::TCPStore>(addr, store_opts);
    if (ctx.backend_ == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const auto ifname = env("GLOO_SOCKET_IFNAME")) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*ifname));
      } else if (is_loopback(addr)) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      group->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, ctx.rank_, ctx.world_, opts);
    } else if (ctx.backend_ == "nccl") {
#ifdef VCYCLE_WITH_CUDA
      if (!cuda) throw InputError("distributed.backend: nccl needs device: cuda (got " + device + ")");
      group->comm_device = torch::Device(ctx.device_for(device));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      group->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, ctx.rank_, ctx.world_, opts);
#else
      throw InputError("distributed.backend: nccl needs a CUDA build of vcycle (cmake -DVCYCLE_WITH_CUDA=ON); use gloo");
#endif
    } else {
      throw InputError("distributed.backend: unknown backend '" + ctx.backend_ + "' (valid: gloo, nccl)");
    }
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw RunError(fmt::format("rank {} of {}: rendezvous at {}:{} ({}) failed: {}", ctx.rank_, ctx.world_, addr, port,
                               ctx.backend_, describe(e)));
  }
  ctx.group_ = std::move(group);
  ctx.barrier("the first barrier");
  return ctx;
}

std::string DistContext::device_for(const std::string& configured) const {
  if (world_ > 1 && configured == "cuda") return "cuda:" + std::to_string(local_rank_);
  return configured;
}

// ---------------------------------------------------------------------------- collectives
namespace {

[[noreturn]] void collective_failed(int rank, int world, const std::string& backend, const std::string& what,
                                    const std::exception& e) {
  throw RunError(fmt::format("rank {} of {}: {} {} failed: {} (another worker died or did not answer within "
                             "distributed.timeout_s; continue the run with --resume)",
                             rank, world, backend, what, describe(e)));
}

// Consecutive runs of same-dtype, same-device tensors of at most `bucket_bytes` (a larger tensor
// gets a bucket of its own).
std::vector<std::vector<torch::Tensor>> make_buckets(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  std::vector<std::vector<torch::Tensor>> buckets;
  int64_t bytes = 0;
  for (const auto& t : tensors) {
    const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    const bool fits = !buckets.empty() && bytes + b <= bucket_bytes &&
                      buckets.back().front().scalar_type() == t.scalar_type() && buckets.back().front().device() == t.device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(t);
    bytes += b;
  }
  return buckets;
}

}  // namespace

// Flattens each bucket, runs `op` on it (all launched before any is waited for), copies results back.
template <typename Op>
static void bucketed(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes, Op op) {
  struct Pending {
    std::vector<torch::Tensor> members;
    std::vector<torch::Tensor> flat;  // one tensor (the collective's argument)
    c10d_compat::WorkPtr work;
  };
  std::vector<Pending> pending;
  for (auto& members : make_buckets(tensors, bucket_bytes)) {
    Pending p;
    p.members = std::move(members);
    if (p.members.size() == 1 && p.members[0].is_contiguous()) {
      p.flat = {p.members[0]};  // in place, no copy
    } else {
      std::vector<torch::Tensor> views;
      for (const auto& t : p.members) views.push_back(t.reshape({-1}));
      p.flat = {torch::cat(views)};
    }
    p.work = op(p.flat);
    pending.push_back(std::move(p));
  }
  for (auto& p : pending) {
    p.work->wait();
    if (p.flat[0].data_ptr() == p.members[0].data_ptr()) continue;
    int64_t offset = 0;
    for (auto& t : p.members) {
      t.copy_(p.flat[0].narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

void DistContext::all_reduce_sum(const std::vector<torch::Tensor>& tensors, const std::string& what,
                                 int64_t bucket_bytes) const {
  if (!group_) return;
  try {
    bucketed(tensors, bucket_bytes, [&](std::vector<torch::Tensor>& flat) { return group_->pg->allreduce(flat); });
  } catch (const std::exception& e) {
    collective_failed(rank_, world_, backend_, "all-reduce of " + what, e);
  }
}

std::vector<double> DistContext::all_reduce_sum(const std::vector<double>& values, const std::string& what) const {
  if (!group_) return values;
  auto t = torch::tensor(values, torch::kDouble).to(group_->comm_device);
  all_reduce_sum({t}, what);
  t = t.cpu();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void DistContext::broadcast(const std::vector<torch::Tensor>& tensors, const std::string& what) const {
  if (!group_) return;
  try {
    bucketed(tensors, kDefaultBucketBytes, [&](std::vector<torch::Tensor>& flat) {
      c10d::BroadcastOptions opts;
      opts.rootRank = 0;
      return group_->pg->broadcast(flat, opts);
    });
  } catch (const std::exception& e) {
    collective_failed(rank_, world_, backend_, "broadcast of " + what, e);
  }
}

int64_t DistContext::broadcast_int(int64_t value, const std::string& what) const {
  if (!group_) return value;
  auto t = torch::tensor({value}, torch::kLong).to(group_->comm_device);
  broadcast({t}, what);
  return t.cpu().item<int64_t>();
}

std::string DistContext::broadcast_bytes(const std::string& bytes, const std::string& what) const {
  if (!group_) return bytes;
  const int64_t n = broadcast_int(static_cast<int64_t>(bytes.size()), "the size of " + what);
  auto t = torch::empty({n}, torch::kUInt8);
  if (rank_ == 0 && !bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  t = t.to(group_->comm_device);
  broadcast({t}, what);
  t = t.cpu();
  return std::string(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(n));
}

void DistContext::check_same(int64_t value, const std::string& what) const {
  if (!group_) return;
  auto t = torch::tensor({static_cast<double>(value), -static_cast<double>(value)}, torch::kDouble).to(group_->comm_device);
  try {
    std::vector<torch::Tensor> args{t};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::MAX;
    group_->pg->allreduce(args, opts)->wait();
  } catch (const std::exception& e) {
    collective_failed(rank_, world_, backend_, "consistency check of " + what, e);
  }
  t = t.cpu();
  const double hi = t[0].item<double>(), lo = -t[1].item<double>();
  if (hi != lo) {
    throw RunError(fmt::format("rank {} of {}: the ranks disagree on {} (this rank {}, range {} .. {}); all ranks "
                               "must run the same config from the same checkpoint",
                               rank_, world_, what, value, lo, hi));
  }
}

void DistContext::barrier(const std::string& what) const {
  if (!group_) return;
  try {
    group_->pg->barrier()->wait();
  } catch (const std::exception& e) {
    collective_failed(rank_, world_, backend_, what, e);
  }
}

// ---------------------------------------------------------------------------- the local launcher
namespace {

volatile sig_atomic_t g_forwarded_signal = 0;
pid_t g_children[256];
volatile sig_atomic_t g_child_count = 0;

void forward_signal(int sig) {
  g_forwarded_signal = sig;
  for (int i = 0; i < g_child_count; ++i) {
    if (g_children[i] > 0) ::kill(g_children[i], sig);
  }
}

// A TCP port that is free on the loopback interface right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw RunError(std::string("--nproc: cannot open a socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw RunError(std::string("--nproc: cannot find a free port: ") + std::strerror(errno));
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string exit_description(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

}  // namespace

std::vector<std::string> strip_nproc_argument(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

namespace {

// This program's path, for the workers to re-execute.
std::string self_executable() {
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) throw RunError("--nproc: cannot find this program (/proc/self/exe)");
  exe[n] = '\0';
  return exe;
}

// The SIGINT / SIGTERM handlers in place before the launcher installed forward_signal.
struct SavedHandlers {
  struct sigaction int_handler {}, term_handler {}, hup_handler {};
};

SavedHandlers forward_signals_to_workers() {
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  SavedHandlers saved;
  ::sigaction(SIGINT, &sa, &saved.int_handler);
  ::sigaction(SIGTERM, &sa, &saved.term_handler);
  ::sigaction(SIGHUP, &sa, &saved.hup_handler);
  return saved;
}

void restore_signal_handlers(const SavedHandlers& saved) {
  ::sigaction(SIGINT, &saved.int_handler, nullptr);
  ::sigaction(SIGTERM, &saved.term_handler, nullptr);
  ::sigaction(SIGHUP, &saved.hup_handler, nullptr);
}

// In the forked child: the worker's environment (as torchrun sets it), then this program again.
[[noreturn]] void exec_worker(const std::string& exe, const std::vector<std::string>& args, int rank, int nproc,
                              const std::string& port, const SavedHandlers& saved, pid_t launcher) {
  // A worker dies with its launcher (a SIGKILLed launcher cannot stop its workers itself). The
  // launcher may have died before the prctl took effect: then the worker's parent is no longer it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != launcher) std::_Exit(1);
  restore_signal_handlers(saved);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", port.c_str(), 1);
  std::vector<char*> argv{const_cast<char*>(exe.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(exe.c_str(), argv.data());
  std::_Exit(127);
}

// Forks the workers; their pids by rank (also in g_children, for forward_signal).
std::vector<pid_t> spawn_workers(int nproc, const std::string& exe, const std::vector<std::string>& args,
                                 const std::string& port, const SavedHandlers& saved) {
  std::vector<pid_t> pids(static_cast<size_t>(nproc), -1);
  const pid_t launcher = ::getpid();
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      forward_signal(SIGKILL);
      throw RunError(std::string("--nproc: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) exec_worker(exe, args, r, nproc, port, saved, launcher);
    pids[static_cast<size_t>(r)] = pid;
    g_children[r] = pid;
    g_child_count = r + 1;
  }
  return pids;
}

struct WorkerFailure {
  std::string message;     // empty when every worker succeeded
  bool bad_input = false;  // the first failed worker exited with code 2 (config / data / argument)
};

// Waits for all workers; on the first failure stops the others (SIGTERM, then SIGKILL after grace_s).
WorkerFailure wait_for_workers(std::vector<pid_t>& pids, double grace_s) {
  const int nproc = static_cast<int>(pids.size());
  int running = nproc;
  WorkerFailure failure;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done < 0 && errno != EINTR) break;
    if (done <= 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        for (pid_t p : pids) if (p > 0) ::kill(p, SIGKILL);
        deadline = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    int rank = -1;
    for (int r = 0; r < nproc; ++r) {
      if (pids[static_cast<size_t>(r)] == done) rank = r;
    }
    if (rank < 0) continue;
    pids[static_cast<size_t>(rank)] = -1;
    g_children[rank] = -1;
    --running;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failure.message.empty()) {
      failure.message = fmt::format("worker rank {} of {} (pid {}) {}", rank, nproc, done, exit_description(status));
      failure.bad_input = WIFEXITED(status) && WEXITSTATUS(status) == kExitBadInput;
      if (running > 0) {
        std::fprintf(stderr, "vcycle: %s; stopping the other workers\n", failure.message.c_str());
        for (pid_t p : pids) if (p > 0) ::kill(p, SIGTERM);
        deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
      }
    }
  }
  return failure;
}

}  // namespace

void launch_local_workers(int nproc, const std::vector<std::string>& args, double grace_s) {
  if (nproc < 1 || nproc > 256) throw InputError(fmt::format("--nproc must be in 1 .. 256, got {}", nproc));
  const std::string exe = self_executable();
  const std::string port = std::to_string(free_port());
  const SavedHandlers saved = forward_signals_to_workers();
  std::vector<pid_t> pids = spawn_workers(nproc, exe, args, port, saved);
  const WorkerFailure failure = wait_for_workers(pids, grace_s);
  g_child_count = 0;
  restore_signal_handlers(saved);
  // A stop signal forwarded to the workers: they checkpointed and stopped (128 + signal); so does the launcher.
  if (!failure.message.empty() && g_forwarded_signal > 0 && g_forwarded_signal != SIGKILL) {
    throw StopRequested(failure.message + fmt::format(" after signal {} was forwarded; continue with --resume",
                                                      int(g_forwarded_signal)),
                        g_forwarded_signal);
  }
  if (!failure.message.empty() && failure.bad_input) {
    throw InputError(failure.message + " (bad input; see the workers' messages)");
  }
  if (!failure.message.empty()) {
    throw RunError(failure.message +
                   (g_forwarded_signal ? fmt::format(" after signal {} was forwarded", int(g_forwarded_signal)) : "") +
                   "; the run can be continued with --resume");
  }
}

}  // namespace vcycle
