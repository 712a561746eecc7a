// Image classification data in the IDX format of MNIST and Fashion-MNIST (LeCun et al.), gzipped
// or not: the files Debian's dataset-fashion-mnist installs under /usr/share/datasets/fashion-mnist/.
//
// IDX: 2 zero bytes, a type byte (0x08 = unsigned byte, the only type images and labels use), the
// number of dimensions n, n big-endian uint32 sizes, then the data, row-major, nothing after it.
// An images file (N, S, S) is paired with its labels file (N) by name, as the data sets ship them:
// `…images-idx3…` ↔ `…labels-idx1…` in the same directory (data.train / data.valid name the images).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vcycle/data/batch.h"

namespace vcycle {

// Reads an IDX file of unsigned bytes into a uint8 tensor of its dimensions. InputError naming the
// file on a missing file, a bad magic, a type other than 0x08, or a size that does not match the data.
torch::Tensor idx_load(const std::string& path);

// The labels file that belongs to an images file (`images-idx3` -> `labels-idx1` in its name).
// InputError naming the file when its name has no `images-idx3`.
std::string idx_labels_path(const std::string& images_path);

struct ImageDataOptions {
  int64_t image_size = 28;      // images must be image_size × image_size
  int64_t channels = 1;         // IDX image files are grey: only 1 is accepted
  int64_t classes = 10;         // labels must be below this
  int64_t tokens_per_image = 1; // Batch::tokens per image (the model's sequence length, for FLOPs)
};

// Batches of images (B, 1, S, S) float, standardised by the training set's pixel mean and standard
// deviation, and labels (B,) int64. Training images are drawn uniformly with replacement by a
// generator seeded by (seed, global step); validation batch i holds images spread evenly over the
// validation file, the same every time.
class ImageBatchSource final : public BatchSource {
 public:
  ImageBatchSource(const std::string& train_images, const std::string& valid_images, const ImageDataOptions& options,
                   int64_t batch_size, uint64_t seed, int64_t valid_batches);
  Batch train_batch(int64_t global_step, int64_t batch_size, int64_t micro, int64_t micro_count) override;
  int64_t valid_batch_count() const override { return valid_batches_; }
  Batch valid_batch(int64_t index) override;

  int64_t train_size() const { return train_images_.size(0); }
  int64_t valid_size() const { return valid_images_.size(0); }

 private:
  Batch gather(const torch::Tensor& images, const torch::Tensor& labels, const std::vector<int64_t>& rows) const;
  ImageDataOptions options_;
  torch::Tensor train_images_, train_labels_, valid_images_, valid_labels_;  // uint8 (N, S, S), int64 (N)
  double mean_ = 0, std_ = 1;  // training pixel statistics on the [0, 1] scale
  int64_t batch_size_;
  uint64_t seed_;
  int64_t valid_batches_;
};

}  // namespace vcycle
