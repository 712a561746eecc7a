// safetensors: round trip of every dtype, the layout other readers rely on, and named faults.
#include <cstring>

#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"
#include "vcycle/io/safetensors.h"

// Catch last: LibTorch pulls in glog, whose CHECK macro must not replace Catch's.
#include <catch2/catch.hpp>

using namespace vcycle;

namespace {
uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return n;
}
}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes and values", "[io][safetensors]") {
  torch::manual_seed(0);
  const TensorMap in = {{"a.weight", torch::randn({3, 5})},
                        {"b", torch::randn({2, 2}, torch::kFloat64)},
                        {"c.half", torch::randn({7}).to(torch::kFloat16)},
                        {"d.bf16", torch::randn({4, 1}).to(torch::kBFloat16)},
                        {"ids", torch::arange(6, torch::kLong).view({2, 3})},
                        {"i32", torch::arange(3, torch::kInt)},
                        {"mask", torch::tensor({true, false, true})},
                        {"scalar", torch::tensor(2.5f)},
                        {"empty", torch::zeros({0, 4})},
                        {"strided", torch::randn({4, 6}).t()}};  // non-contiguous: written row-major
  const std::string bytes = safetensors_to_bytes(in, {{"format", "pt"}});
  // The header is JSON, padded to a multiple of 8 so the data starts aligned.
  const uint64_t n = header_length(bytes);
  CHECK(n % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["__metadata__"]["format"] == "pt");
  CHECK(header["a.weight"]["dtype"] == "F32");
  CHECK(header["a.weight"]["shape"] == nlohmann::json::array({3, 5}));
  CHECK(header["d.bf16"]["dtype"] == "BF16");
  SafetensorsMetadata meta;
  const TensorMap out = safetensors_from_bytes(bytes, "mem", &meta);
  CHECK(meta.at("format") == "pt");
  REQUIRE(out.size() == in.size());
  for (const auto& [name, t] : in) {
    INFO(name);
    CHECK(out.at(name).scalar_type() == t.scalar_type());
    CHECK(out.at(name).sizes() == t.sizes());
    CHECK(torch::equal(out.at(name), t));
  }
}

TEST_CASE("safetensors faults name the file and the tensor", "[io][safetensors]") {
  const std::string good = safetensors_to_bytes({{"w", torch::ones({4, 4})}});
  CHECK_THROWS_WITH(safetensors_from_bytes("abc", "f.st"), Catch::Contains("f.st") && Catch::Contains("not a safetensors"));
  CHECK_THROWS_WITH(safetensors_from_bytes(good.substr(0, 20), "f.st"), Catch::Contains("runs past the end"));
  CHECK_THROWS_WITH(safetensors_from_bytes(good.substr(0, good.size() - 4), "f.st"),
                    Catch::Contains("tensor 'w'") && Catch::Contains("outside the data section"));
  auto with_header = [](const std::string& json, size_t data_bytes) {
    std::string b(8, '\0');
    const uint64_t n = json.size();
    std::memcpy(b.data(), &n, 8);
    return b + json + std::string(data_bytes, '\0');
  };
  CHECK_THROWS_WITH(safetensors_from_bytes(with_header(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "f.st"),
                    Catch::Contains("tensor 'x'") && Catch::Contains("needs 12 bytes"));
  CHECK_THROWS_WITH(safetensors_from_bytes(with_header(R"({"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1), "f.st"),
                    Catch::Contains("tensor 'x'") && Catch::Contains("unsupported dtype Q4"));
  CHECK_THROWS_WITH(safetensors_from_bytes(with_header(R"({"x":{"dtype":"F32"}})", 0), "f.st"),
                    Catch::Contains("tensor 'x'") && Catch::Contains("malformed"));
  CHECK_THROWS_AS(safetensors_from_bytes(with_header("{not json", 0), "f.st"), InputError);
  CHECK_THROWS_WITH(safetensors_to_bytes({{"c", torch::ones({2}, torch::kComplexFloat)}}), Catch::Contains("'c'"));
}
