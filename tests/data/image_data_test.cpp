// IDX image data: format errors name the file, batches are deterministic per step, and the real
// Fashion-MNIST files from Debian's dataset-fashion-mnist load with their documented shapes.

#include <filesystem>

#include <torch/torch.h>

#include "test_util.h"
#include "vcycle/core/errors.h"
#include "vcycle/data/image_data.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;
using torch::indexing::Slice;

TEST_CASE("idx_load reads IDX files and rejects malformed ones naming the file", "[data][idx]") {
  test::TempDir dir("idx");
  test::write_idx(dir.str("ok-images-idx3-ubyte"), {2, 3, 4}, std::vector<uint8_t>(24, 7));
  const auto t = idx_load(dir.str("ok-images-idx3-ubyte"));
  CHECK(t.sizes() == torch::IntArrayRef({2, 3, 4}));
  CHECK(t.scalar_type() == torch::kUInt8);
  CHECK(t.eq(7).all().item<bool>());

  test::write_text(dir.str("magic.idx"), std::string("\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9));
  CHECK_THROWS_WITH(idx_load(dir.str("magic.idx")), Catch::Contains("magic.idx") && Catch::Contains("magic"));
  test::write_text(dir.str("float.idx"), std::string("\x00\x00\x0d\x01\x00\x00\x00\x01\x05\x05\x05\x05", 12));
  CHECK_THROWS_WITH(idx_load(dir.str("float.idx")), Catch::Contains("float.idx") && Catch::Contains("0x0d"));
  test::write_idx(dir.str("short.idx"), {2, 3, 4}, std::vector<uint8_t>(20, 1));
  CHECK_THROWS_WITH(idx_load(dir.str("short.idx")), Catch::Contains("short.idx") && Catch::Contains("24 bytes"));
  test::write_text(dir.str("header.idx"), std::string("\x00\x00\x08\x03\x00\x00", 6));
  CHECK_THROWS_WITH(idx_load(dir.str("header.idx")), Catch::Contains("header.idx") && Catch::Contains("truncated"));
  CHECK_THROWS_WITH(idx_load(dir.str("absent.idx")), Catch::Contains("absent.idx"));

  CHECK(idx_labels_path("/d/train-images-idx3-ubyte.gz") == "/d/train-labels-idx1-ubyte.gz");
  CHECK_THROWS_WITH(idx_labels_path("/images-idx3/pictures.bin"), Catch::Contains("pictures.bin") && Catch::Contains("images-idx3"));
}

TEST_CASE("image batches: shapes, labels, determinism per step, micro-batches, fixed validation", "[data][idx]") {
  test::TempDir dir("images");
  const std::string train = test::write_tiny_image_set(dir.str(), 40, 12, 8, 4);
  ImageDataOptions o;
  o.image_size = 8; o.classes = 4; o.tokens_per_image = 5;
  ImageBatchSource a(train, dir.str("t10k-images-idx3-ubyte"), o, 6, 3, 2);
  ImageBatchSource b(train, dir.str("t10k-images-idx3-ubyte"), o, 6, 3, 2);
  CHECK(a.train_size() == 40);
  CHECK(a.valid_size() == 12);
  const Batch full = a.train_batch(4, 6, 0, 1);
  CHECK(full.input.sizes() == torch::IntArrayRef({6, 1, 8, 8}));
  CHECK(full.input.scalar_type() == torch::kFloat);
  CHECK(full.target.sizes() == torch::IntArrayRef({6}));
  CHECK(full.target.lt(4).all().item<bool>());
  CHECK(full.tokens == 30);
  CHECK(torch::equal(full.input, b.train_batch(4, 6, 0, 1).input));
  CHECK(torch::equal(a.train_batch(4, 3, 1, 2).input, full.input.index({Slice(3, 6)})));
  CHECK_FALSE(torch::equal(a.train_batch(5, 6, 0, 1).target, full.target));
  // Two validation batches of 6 cover the 12 validation images once each.
  CHECK(torch::equal(a.valid_batch(1).input, b.valid_batch(1).input));
  CHECK(torch::equal(torch::cat({a.valid_batch(0).target, a.valid_batch(1).target}),
                     idx_load(dir.str("t10k-labels-idx1-ubyte")).to(torch::kLong)));

  // Shape and label errors name the file.
  ImageDataOptions wrong = o;
  wrong.image_size = 28;
  CHECK_THROWS_WITH(ImageBatchSource(train, dir.str("t10k-images-idx3-ubyte"), wrong, 6, 3, 2),
                    Catch::Contains("train-images-idx3-ubyte") && Catch::Contains("(40, 8, 8)"));
  ImageDataOptions few = o;
  few.classes = 2;
  CHECK_THROWS_WITH(ImageBatchSource(train, dir.str("t10k-images-idx3-ubyte"), few, 6, 3, 2),
                    Catch::Contains("train-labels-idx1-ubyte") && Catch::Contains("not below model.classes 2"));
  std::filesystem::remove(dir.str("t10k-labels-idx1-ubyte"));
  CHECK_THROWS_WITH(ImageBatchSource(train, dir.str("t10k-images-idx3-ubyte"), o, 6, 3, 2),
                    Catch::Contains("t10k-labels-idx1-ubyte"));
}

TEST_CASE("Fashion-MNIST from Debian's dataset-fashion-mnist loads with its shapes", "[data][idx][fashion]") {
  const std::string root = "/usr/share/datasets/fashion-mnist/";
  if (!std::filesystem::exists(root + "train-images-idx3-ubyte.gz")) {
    FAIL("Fashion-MNIST is missing at " << root << ": install Debian's dataset-fashion-mnist "
         "(tools/install-deps.sh does, or apt-get install dataset-fashion-mnist)");
  }
  ImageDataOptions o;  // 28 × 28, 1 channel, 10 classes
  o.tokens_per_image = 50;
  ImageBatchSource src(root + "train-images-idx3-ubyte.gz", root + "t10k-images-idx3-ubyte.gz", o, 32, 1, 2);
  CHECK(src.train_size() == 60000);
  CHECK(src.valid_size() == 10000);
  const Batch b = src.train_batch(0, 32, 0, 1);
  CHECK(b.input.sizes() == torch::IntArrayRef({32, 1, 28, 28}));
  CHECK(b.target.min().item<int64_t>() >= 0);
  CHECK(b.target.max().item<int64_t>() <= 9);
  // Standardised by the training set's statistics: roughly zero mean, unit spread.
  CHECK(std::abs(b.input.mean().item<double>()) < 0.3);
  CHECK(idx_load(root + "t10k-labels-idx1-ubyte.gz").to(torch::kLong).bincount().eq(1000).all().item<bool>());  // 1000 per class
}
