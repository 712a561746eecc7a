// ViT / DeiT image classifier (Dosovitskiy et al. 2021; Touvron et al. 2021): non-overlapping
// p × p patches, each flattened and projected linearly to d (the same map as a stride-p convolution),
// a learned class token prepended, learned position embeddings added, pre-LayerNorm blocks
// (bidirectional attention, GELU MLP), a final LayerNorm and an untied linear classifier on the class
// token.
//
// Parameter names are stable and dotted; the ViT parameter map depends on them:
//   patch_emb.{weight (d, C·p·p), bias (d)}   cls_token (1, 1, d)   pos_emb (1, N+1, d)
//   blocks.{l}.ln1.{weight,bias} (d)   blocks.{l}.attn.qkv.{weight (3·H·h, d), bias (3·H·h)}
//   blocks.{l}.attn.proj.{weight (d, H·h), bias (d)}   blocks.{l}.ln2.{weight,bias} (d)
//   blocks.{l}.mlp.fc.{weight (f, d), bias (f)}   blocks.{l}.mlp.proj.{weight (d, f), bias (d)}
//   ln_f.{weight,bias} (d)   head.{weight (classes, d), bias (classes)}
// with N = (image_size / patch)² patches.
#pragma once

#include <cstdint>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "vcycle/models/attention.h"
#include "vcycle/models/layers.h"

namespace vcycle {

struct ViTConfig {
  int64_t image_size = 28;  // square images of image_size × image_size pixels
  int64_t patch = 4;        // p, patch side; must divide image_size
  int64_t channels = 1;     // C, 1 = grey
  int64_t classes = 10;     // classifier outputs
  int64_t layers = 4;       // L, number of blocks
  int64_t hidden = 64;      // d, residual width
  int64_t heads = 4;        // H, attention heads
  int64_t head_size = 16;   // h; attention inner size is H·h
  int64_t ffn = 256;        // f, MLP inner width

  int64_t patches() const { return (image_size / patch) * (image_size / patch); }  // N
  int64_t tokens() const { return patches() + 1; }                                  // N + class token
};

// A pre-LayerNorm encoder block.
struct ViTBlockImpl : torch::nn::Cloneable<ViTBlockImpl> {
  explicit ViTBlockImpl(const ViTConfig& cfg);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  ViTConfig cfg;
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  SelfAttention attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(ViTBlock);

struct ViTImpl : torch::nn::Cloneable<ViTImpl> {
  explicit ViTImpl(const ViTConfig& cfg);
  void reset() override;

  // images: (B, C, S, S) float. Returns class logits (B, classes).
  torch::Tensor forward(const torch::Tensor& images);
  // Mean cross-entropy of forward(images) against labels (B,) int64.
  torch::Tensor loss(const torch::Tensor& images, const torch::Tensor& labels);

  ViTConfig cfg;
  torch::nn::Linear patch_emb{nullptr};
  torch::Tensor cls_token, pos_emb;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(ViT);

// (B, C, S, S) -> (B, N, C·p·p): row-major patches, each flattened channel-major (as a stride-p conv
// with weight (d, C, p, p) reads them).
torch::Tensor vit_patchify(const torch::Tensor& images, int64_t patch);

// DeiT-style initialisation: N(0, 0.02) weights, class token and position embeddings, zero biases,
// LayerNorm gains 1. Uses the global torch RNG.
void vit_init_weights(ViTImpl& model);

}  // namespace vcycle
