// Checkpoint format: round trip, and every kind of damage is detected and named.

#include <filesystem>

#include "test_util.h"
#include "vcycle/core/checkpoint.h"
#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {
Checkpoint sample() {
  Checkpoint c;
  c.meta_json = R"({"step": 3})";
  c.blobs["optimizer"] = std::string("\x00\x01\x02 binary", 10);
  c.tensors["model/w"] = torch::randn({3, 4});
  c.tensors["model/b"] = torch::arange(5, torch::kLong);
  return c;
}
}  // namespace

TEST_CASE("checkpoints round-trip bitwise and keep the previous file", "[checkpoint]") {
  test::TempDir dir("ckpt");
  const Checkpoint c = sample();
  const std::string path = dir.str("x.ckpt");
  save_checkpoint(path, c);
  CHECK_FALSE(std::filesystem::exists(path + ".prev"));
  const Checkpoint back = load_checkpoint(path);
  CHECK(back.meta_json == c.meta_json);
  CHECK(back.blobs.at("optimizer") == c.blobs.at("optimizer"));
  REQUIRE(back.tensors.size() == 2);
  CHECK(torch::equal(back.tensors.at("model/w"), c.tensors.at("model/w")));
  CHECK(torch::equal(back.tensors.at("model/b"), c.tensors.at("model/b")));

  Checkpoint c2 = sample();
  c2.meta_json = R"({"step": 4})";
  save_checkpoint(path, c2);
  CHECK(load_checkpoint(path).meta_json == c2.meta_json);
  CHECK(load_checkpoint(path + ".prev").meta_json == c.meta_json);
  CHECK_FALSE(std::filesystem::exists(temp_path_for(path)));
}

TEST_CASE("damaged checkpoints are rejected with the fault named", "[checkpoint]") {
  const std::string good = checkpoint_to_bytes(sample());
  auto error_of = [](const std::string& bytes) {
    try {
      checkpoint_from_bytes(bytes, "f.ckpt");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of(""), Catch::Contains("f.ckpt") && Catch::Contains("empty"));
  CHECK_THAT(error_of(good.substr(0, 10)), Catch::Contains("truncated"));
  CHECK_THAT(error_of(good.substr(0, good.size() - 7)), Catch::Contains("truncated"));
  CHECK_THAT(error_of("PK\x03\x04 this is a zip" + good.substr(20)), Catch::Contains("wrong magic"));
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  CHECK_THAT(error_of(flipped), Catch::Contains("checksum mismatch"));
  std::string version = good;
  version[8] = 9;
  CHECK_THAT(error_of(version), Catch::Contains("version 9"));
  CHECK_THAT(error_of(good + "xx"), Catch::Contains("trailing"));
  CHECK(error_of(good) == "no error");
}
