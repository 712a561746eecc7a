// LibTorch side of the multi-tensor CUDA optimizer kernels; see optim_cuda.h.
#include "optim_cuda.h"

#include <c10/cuda/CUDAStream.h>

#include "vcycle/optim/fused.h"

namespace vcycle::optim::detail {

namespace {

float* f32(const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

// Copies a descriptor array to the device of `like` (a small blocking host-to-device copy; the
// caching allocator makes the buffer free to get).
template <class T>
torch::Tensor to_device(const std::vector<T>& host, const torch::Tensor& like) {
  const auto bytes = static_cast<int64_t>(host.size() * sizeof(T));
  auto cpu = torch::from_blob(const_cast<T*>(host.data()), {bytes}, torch::kUInt8);
  return cpu.to(like.device(), /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

bool cuda_kernel_ok(std::initializer_list<const torch::Tensor*> tensors) {
  if (!fused_cpu_kernels()) return false;  // the one switch between fused and reference paths
  for (const torch::Tensor* t : tensors) {
    if (!t->defined() || !t->is_cuda() || t->scalar_type() != torch::kFloat || !t->is_contiguous() ||
        t->is_sparse())
      return false;
  }
  return true;
}

void CudaBatch::add_factored(const torch::Tensor& w, const torch::Tensor& g, const torch::Tensor& m,
                             const torch::Tensor& r, const torch::Tensor& c, const torch::Tensor& R,
                             const torch::Tensor& C) {
  TORCH_CHECK(w.dim() >= 2, "CudaBatch: factored parameter must have dim >= 2, got shape ", w.sizes());
  const int64_t M = w.size(-2), N = w.size(-1);
  const int64_t B = M * N == 0 ? 0 : w.numel() / (M * N);
  if (B == 0) return;
  factored_.push_back({f32(w), f32(g), f32(m), f32(r), f32(c), f32(R), f32(C), B, M, N, rows_, cols_, mats_});
  rows_ += B * M;
  cols_ += B * N;
  mats_ += B;
  params_.push_back(w);
}

void CudaBatch::add_flat(const torch::Tensor& w, const torch::Tensor& g, const torch::Tensor& m,
                         const torch::Tensor& v, double weight_decay, bool trust_ratio) {
  const int64_t n = w.numel();
  if (n == 0) return;
  const int tensor = static_cast<int>(flat_.size());
  flat_.push_back({f32(w), f32(g), f32(m), f32(v), n, static_cast<float>(weight_decay), trust_ratio ? 1 : 0});
  for (int64_t b = 0; b < n; b += cuda::kChunkSize) chunks_.push_back({tensor, b, std::min(cuda::kChunkSize, n - b)});
  params_.push_back(w);
}

template <class Launch>
void CudaBatch::run(const Launch& launch) {
  if (params_.empty()) return;
  const torch::Tensor& like = params_.front();
  const auto stream = c10::cuda::getCurrentCUDAStream(like.device().index()).stream();
  launch(like, static_cast<void*>(stream));
  // The kernels wrote through raw pointers; autograd's version check must see the change.
  for (auto& p : params_) p.unsafeGetTensorImpl()->bump_version();
  params_.clear();
  factored_.clear();
  flat_.clear();
  chunks_.clear();
  rows_ = cols_ = mats_ = 0;
}

void CudaBatch::came(const cuda::CameHyper& h) {
  run([&](const torch::Tensor& like, void* stream) {
    if (!factored_.empty()) {
      const auto list = to_device(factored_, like);
      auto ws = torch::empty({cuda::factored_workspace_floats(rows_, cols_, mats_, factored_.size())}, like.options());
      cuda::came_factored(reinterpret_cast<const cuda::Factored*>(list.data_ptr()), static_cast<int>(factored_.size()),
                          rows_, cols_, mats_, h, ws.data_ptr<float>(), stream);
    }
    if (!flat_.empty()) {
      const auto list = to_device(flat_, like), chunks = to_device(chunks_, like);
      auto ws = torch::empty({cuda::flat_workspace_floats(flat_.size())}, like.options());
      cuda::came_flat(reinterpret_cast<const cuda::Flat*>(list.data_ptr()), static_cast<int>(flat_.size()),
                      reinterpret_cast<const cuda::Chunk*>(chunks.data_ptr()), static_cast<int64_t>(chunks_.size()), h,
                      ws.data_ptr<float>(), stream);
    }
  });
}

void CudaBatch::lamb(const cuda::LambHyper& h) {
  TORCH_CHECK(factored_.empty(), "CudaBatch: LAMB takes every parameter as flat");
  run([&](const torch::Tensor& like, void* stream) {
    const auto list = to_device(flat_, like), chunks = to_device(chunks_, like);
    auto ws = torch::empty({cuda::flat_workspace_floats(flat_.size())}, like.options());
    cuda::lamb_flat(reinterpret_cast<const cuda::Flat*>(list.data_ptr()), static_cast<int>(flat_.size()),
                    reinterpret_cast<const cuda::Chunk*>(chunks.data_ptr()), static_cast<int64_t>(chunks_.size()), h,
                    ws.data_ptr<float>(), stream);
  });
}

void CudaBatch::adafactor(const cuda::AdafactorHyper& h) {
  run([&](const torch::Tensor& like, void* stream) {
    if (!factored_.empty()) {
      const auto list = to_device(factored_, like);
      auto ws = torch::empty({cuda::factored_workspace_floats(rows_, cols_, mats_, factored_.size())}, like.options());
      cuda::adafactor_factored(reinterpret_cast<const cuda::Factored*>(list.data_ptr()),
                               static_cast<int>(factored_.size()), rows_, cols_, mats_, h, ws.data_ptr<float>(), stream);
    }
    if (!flat_.empty()) {
      const auto list = to_device(flat_, like), chunks = to_device(chunks_, like);
      auto ws = torch::empty({cuda::flat_workspace_floats(flat_.size())}, like.options());
      cuda::adafactor_flat(reinterpret_cast<const cuda::Flat*>(list.data_ptr()), static_cast<int>(flat_.size()),
                           reinterpret_cast<const cuda::Chunk*>(chunks.data_ptr()),
                           static_cast<int64_t>(chunks_.size()), h, ws.data_ptr<float>(), stream);
    }
  });
}

}  // namespace vcycle::optim::detail
