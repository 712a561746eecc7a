// The one place that knows how LibTorch's c10d API differs between 1.13 and 2.x.
//
// 1.13: ProcessGroupGloo / ProcessGroupNCCL derive from c10d::ProcessGroup.
// 2.x:  they derive from c10d::Backend (ProcessGroup became a dispatcher over backends); the
//       collective calls (allreduce, broadcast, barrier) and c10d::Work are the same.
// The gloo headers that ProcessGroupGloo.hpp includes come from Debian's libgloo-dev; the macro
// below is what LibTorch's own build defines when it is built with Gloo.
#pragma once

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif

#include <torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#ifdef VCYCLE_WITH_CUDA
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "vcycle/core/distributed.h"

namespace vcycle::c10d_compat {

#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif
using GroupPtr = c10::intrusive_ptr<GroupBase>;
using WorkPtr = c10::intrusive_ptr<c10d::Work>;

}  // namespace vcycle::c10d_compat

namespace vcycle {

// What DistContext holds: the store must outlive the group built on it.
struct DistContext::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10d_compat::GroupPtr pg;
  torch::Device comm_device{torch::kCPU};  // where small helper tensors live (CUDA for NCCL)
};

}  // namespace vcycle
