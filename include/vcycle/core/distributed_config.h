// The `distributed:` settings of a run (see distributed.h and README "Data-parallel runs"), in a
// header of their own so that the run config (config/run_config.h) can hold them without pulling in
// LibTorch. Not part of the config fingerprint: a run may be resumed with another world size or backend.
#pragma once

#include <cstdint>
#include <string>

namespace vcycle {

struct DistributedConfig {
  std::string backend;      // gloo | nccl; empty = gloo on cpu, nccl on cuda
  double timeout_s = 60;    // a collective (or the rendezvous) that takes longer fails the run
  int64_t bucket_mb = 25;   // gradient all-reduce bucket size in MiB
};

}  // namespace vcycle
