// LibTorch side of the multi-tensor CUDA optimizer kernels (built with VCYCLE_WITH_CUDA only).
//
// An optimizer's step() adds each fp32, contiguous CUDA parameter of a group to a CudaBatch instead
// of updating it alone, then launches the batch once. Anything else (CPU, bf16 or non-contiguous
// parameters) keeps the per-tensor path, so results never depend on which path ran beyond float
// rounding (tests/optim/cuda_kernels_test.cpp compares the two on a GPU).
#pragma once

#include <initializer_list>
#include <vector>

#include <torch/types.h>

#include "optim_kernels.h"

namespace vcycle::optim::detail {

// True when every tensor is a dense, contiguous fp32 CUDA tensor.
bool cuda_kernel_ok(std::initializer_list<const torch::Tensor*> tensors);

class CudaBatch {
 public:
  // w, g, m: the parameter, its gradient and first moment (m may be undefined for Adafactor);
  // r, c (and R, C for CAME): the factored statistics.
  void add_factored(const torch::Tensor& w, const torch::Tensor& g, const torch::Tensor& m, const torch::Tensor& r,
                    const torch::Tensor& c, const torch::Tensor& R = {}, const torch::Tensor& C = {});
  // v: the elementwise second moment. weight_decay and trust_ratio are LAMB's.
  void add_flat(const torch::Tensor& w, const torch::Tensor& g, const torch::Tensor& m, const torch::Tensor& v,
                double weight_decay = 0, bool trust_ratio = false);
  bool empty() const { return params_.empty(); }

  void came(const cuda::CameHyper& h);
  void lamb(const cuda::LambHyper& h);
  void adafactor(const cuda::AdafactorHyper& h);

 private:
  template <class Launch>
  void run(const Launch& launch);

  std::vector<torch::Tensor> params_;  // kept alive until the launch; versions bumped after it
  std::vector<cuda::Factored> factored_;
  std::vector<cuda::Flat> flat_;
  std::vector<cuda::Chunk> chunks_;
  int64_t rows_ = 0, cols_ = 0, mats_ = 0;
};

}  // namespace vcycle::optim::detail
