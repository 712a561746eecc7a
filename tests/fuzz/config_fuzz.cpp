// libFuzzer target for the YAML config loader: any byte string must either parse into a config or
// fail with vcycle's own error types, never crash, hang or throw anything else.
//
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DVCYCLE_BUILD_FUZZERS=ON -DVCYCLE_BUILD_TESTS=OFF
//   cmake --build build-fuzz --target vcycle_config_fuzz
//   build-fuzz/vcycle_config_fuzz -max_total_time=60 tests/fuzz/corpus
#include <cstdint>
#include <cstdlib>
#include <string>

#include <yaml-cpp/yaml.h>

#include "vcycle/config/run_config.h"
#include "vcycle/core/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    YAML::Node root = YAML::Load(text);
    // Data paths in fuzzed configs rarely exist; that error is expected and fine.
    (void)vcycle::parse_config(root, "fuzz.yaml");
  } catch (const vcycle::InputError&) {
  } catch (const YAML::Exception&) {  // yaml-cpp's own parse errors (load_config maps them to ConfigError)
  }
  return 0;
}
