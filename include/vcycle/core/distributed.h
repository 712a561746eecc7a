// Data-parallel training over LibTorch's own c10d process groups (Gloo on CPU, NCCL on CUDA builds).
//
// Every rank runs the same program on the same config. Rendezvous is torchrun's: the environment
// variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (rank 0 hosts a c10d TCPStore
// on MASTER_ADDR:MASTER_PORT; the others connect to it). `vcycle run --nproc N` sets them for N local
// workers (launch_local_workers). Without WORLD_SIZE (or with WORLD_SIZE=1) the context is the
// single process: every call returns at once and nothing is communicated.
//
//   DistContext dist = DistContext::init_from_env(cfg.distributed);
//   ... backward on this rank's shard, each loss scaled by its share of the global batch ...
//   dist.all_reduce_sum(grads, "gradients");       // bucketed; grads now the global batch's gradient
//   dist.broadcast(module_tensors, "parameters");  // rank 0's values everywhere
//
// A collective that fails (a peer died, or did not answer within `distributed.timeout_s`) throws
// RunError naming this rank and the operation, so the survivors exit (code 3) instead of hanging.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vcycle/core/distributed_config.h"

namespace vcycle {

class DistContext {
 public:
  DistContext() = default;  // the single process

  // Joins the process group described by the environment (see above); the single process when
  // WORLD_SIZE is unset or 1. Throws InputError for malformed variables, RunError when the
  // rendezvous fails within the timeout.
  static DistContext init_from_env(const DistributedConfig& cfg, const std::string& device);

  int rank() const { return rank_; }
  int world() const { return world_; }
  bool is_main() const { return rank_ == 0; }       // the rank that writes output
  bool distributed() const { return world_ > 1; }
  const std::string& backend() const { return backend_; }  // "gloo" | "nccl" | "" (single process)

  // The device this rank trains on: "cuda" becomes "cuda:<LOCAL_RANK>" in a distributed run.
  std::string device_for(const std::string& configured) const;

  // Sums the tensors over all ranks in place. Tensors are flattened into buckets of at most
  // `bucket_bytes` (one per dtype/device run), each bucket all-reduced asynchronously, then copied
  // back. `what` names the operation in error messages.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, const std::string& what,
                      int64_t bucket_bytes = kDefaultBucketBytes) const;
  // Sums a few doubles over all ranks (loss and token counts).
  std::vector<double> all_reduce_sum(const std::vector<double>& values, const std::string& what) const;
  // Overwrites the tensors with rank 0's values (bucketed like all_reduce_sum).
  void broadcast(const std::vector<torch::Tensor>& tensors, const std::string& what) const;
  // Rank 0's bytes on every rank (e.g. a checkpoint: only rank 0 reads the output directory).
  std::string broadcast_bytes(const std::string& bytes, const std::string& what) const;
  // Rank 0's value on every rank.
  int64_t broadcast_int(int64_t value, const std::string& what) const;
  // Throws RunError if `value` differs between ranks (cheap consistency check of run positions).
  void check_same(int64_t value, const std::string& what) const;
  void barrier(const std::string& what) const;

  static constexpr int64_t kDefaultBucketBytes = 25 * 1024 * 1024;

  struct Group;  // the c10d process group (src/core/c10d_compat.h)

 private:
  int rank_ = 0;
  int world_ = 1;
  int local_rank_ = 0;
  std::string backend_;
  std::shared_ptr<Group> group_;  // null for the single process
};

// `vcycle run --nproc N`: re-executes this program N times (argv without --nproc) with RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT set; forwards
// SIGINT/SIGTERM; when a worker fails, stops the others (SIGTERM, then SIGKILL after `grace_s`) and
// throws RunError naming the failed rank. Returns when all workers succeeded.
void launch_local_workers(int nproc, const std::vector<std::string>& args, double grace_s = 10.0);

// Removes "--nproc N" / "--nproc=N" from a command line.
std::vector<std::string> strip_nproc_argument(const std::vector<std::string>& args);

}  // namespace vcycle
