// IDX image files and their batches; see include/vcycle/data/image_data.h.
#include "vcycle/data/image_data.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "vcycle/core/errors.h"

namespace vcycle {

namespace {

// The whole file, decompressed when it is gzip (gzread passes other files through unchanged).
std::string read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw InputError(path + ": cannot open IDX file: " + std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  while (true) {
    const int n = gzread(f, buf, sizeof(buf));
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      throw InputError(path + ": cannot read IDX file: " + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

uint32_t big_endian_u32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

std::string shape_string(const torch::Tensor& t) {
  std::string s = "(";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + ")";
}

}  // namespace

torch::Tensor idx_load(const std::string& path) {
  const std::string bytes = read_maybe_gzip(path);
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    throw InputError(path + ": not an IDX file (the first two bytes of the magic number must be 0)");
  }
  const auto type = static_cast<uint8_t>(bytes[2]);
  const auto ndim = static_cast<uint8_t>(bytes[3]);
  if (type != 0x08) {
    throw InputError(path + ": IDX data type " + fmt::format("0x{:02x}", type) + " is not supported (only 0x08, unsigned byte)");
  }
  if (ndim < 1 || ndim > 4) throw InputError(path + ": IDX file has " + std::to_string(ndim) + " dimensions (expected 1 to 4)");
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (bytes.size() < header) throw InputError(path + ": IDX file is truncated inside its header");
  std::vector<int64_t> dims;
  uint64_t count = 1;
  for (size_t d = 0; d < ndim; ++d) {
    const uint32_t n = big_endian_u32(bytes, 4 + 4 * d);
    if (n == 0) throw InputError(path + ": IDX dimension " + std::to_string(d) + " is 0");
    dims.push_back(static_cast<int64_t>(n));
    count *= n;
  }
  if (bytes.size() - header != count) {
    throw InputError(path + ": IDX header promises " + std::to_string(count) + " bytes of data, the file holds " +
                     std::to_string(bytes.size() - header));
  }
  auto out = torch::empty(dims, torch::kUInt8);
  std::memcpy(out.data_ptr<uint8_t>(), bytes.data() + header, count);
  return out;
}

std::string idx_labels_path(const std::string& images_path) {
  const std::string from = "images-idx3", to = "labels-idx1";
  const auto slash = images_path.find_last_of('/');
  const auto pos = images_path.rfind(from);
  if (pos == std::string::npos || (slash != std::string::npos && pos < slash)) {
    throw InputError(images_path + ": an IDX images file's name must contain '" + from +
                     "' (its labels are read from the file named with '" + to + "' instead)");
  }
  return images_path.substr(0, pos) + to + images_path.substr(pos + from.size());
}

ImageBatchSource::ImageBatchSource(const std::string& train_images, const std::string& valid_images,
                                   const ImageDataOptions& options, int64_t batch_size, uint64_t seed, int64_t valid_batches)
    : options_(options), batch_size_(batch_size), seed_(seed), valid_batches_(valid_batches) {
  if (options_.channels != 1) {
    throw InputError("IDX image files are grey (1 channel); the model expects " + std::to_string(options_.channels));
  }
  auto load_pair = [&](const std::string& images_path, torch::Tensor& images, torch::Tensor& labels) {
    images = idx_load(images_path);
    const int64_t s = options_.image_size;
    if (images.dim() != 3 || images.size(1) != s || images.size(2) != s) {
      throw InputError(images_path + ": images have shape " + shape_string(images) + ", expected (N, " +
                       std::to_string(s) + ", " + std::to_string(s) + ") for model.image_size " + std::to_string(s));
    }
    const std::string labels_path = idx_labels_path(images_path);
    auto raw = idx_load(labels_path);
    if (raw.dim() != 1 || raw.size(0) != images.size(0)) {
      throw InputError(labels_path + ": labels have shape " + shape_string(raw) + ", expected (" +
                       std::to_string(images.size(0)) + ") to match " + images_path);
    }
    const int64_t top = raw.max().item<int64_t>();
    if (top >= options_.classes) {
      throw InputError(labels_path + ": label " + std::to_string(top) + " is not below model.classes " +
                       std::to_string(options_.classes));
    }
    labels = raw.to(torch::kLong);
  };
  load_pair(train_images, train_images_, train_labels_);
  load_pair(valid_images, valid_images_, valid_labels_);
  // Standardise with the training set's statistics (Fashion-MNIST: mean ≈ 0.286, std ≈ 0.353).
  const auto pixels = train_images_.to(torch::kDouble).div_(255.0);
  mean_ = pixels.mean().item<double>();
  std_ = std::max(pixels.std().item<double>(), 1e-6);
}

Batch ImageBatchSource::gather(const torch::Tensor& images, const torch::Tensor& labels,
                               const std::vector<int64_t>& rows) const {
  const auto index = torch::tensor(rows, torch::kLong);
  auto x = images.index_select(0, index).to(torch::kFloat).div_(255.0).sub_(mean_).div_(std_).unsqueeze(1);
  const int64_t b = static_cast<int64_t>(rows.size());
  return Batch{x, labels.index_select(0, index), b * options_.tokens_per_image};
}

Batch ImageBatchSource::train_batch(int64_t global_step, int64_t batch_size, int64_t micro, int64_t micro_count) {
  // The generator depends only on (seed, step), as for token batches: resuming draws the same images.
  std::seed_seq seq{static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32), static_cast<uint32_t>(global_step),
                    static_cast<uint32_t>(static_cast<uint64_t>(global_step) >> 32), 0x1a6eu};
  std::mt19937_64 rng(seq);
  std::uniform_int_distribution<int64_t> pick(0, train_images_.size(0) - 1);
  std::vector<int64_t> rows(batch_size * micro_count);
  for (auto& r : rows) r = pick(rng);
  return gather(train_images_, train_labels_,
                std::vector<int64_t>(rows.begin() + micro * batch_size, rows.begin() + (micro + 1) * batch_size));
}

Batch ImageBatchSource::valid_batch(int64_t index) {
  // valid_batches · batch_size images spread evenly over the validation set (all distinct when it
  // is large enough).
  const int64_t total = valid_batches_ * batch_size_, n = valid_images_.size(0);
  std::vector<int64_t> rows(batch_size_);
  for (int64_t i = 0; i < batch_size_; ++i) rows[i] = ((index * batch_size_ + i) * n / std::max<int64_t>(1, total)) % n;
  return gather(valid_images_, valid_labels_, rows);
}

}  // namespace vcycle
