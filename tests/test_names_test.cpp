// CTest splits a test's name at ';' (catch_discover_tests registers each TEST_CASE by name), so a
// test whose name holds one is silently never run. This keeps every name runnable.
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <catch2/catch.hpp>

#include "test_util.h"

TEST_CASE("test names: no test name holds a semicolon", "[meta]") {
  namespace fs = std::filesystem;
  static const std::regex test_case(R"re(TEST_CASE\s*\(\s*"([^"]*)")re");
  int names = 0;
  for (const auto& entry : fs::recursive_directory_iterator(vcycle::test::source_path("tests"))) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::sregex_iterator it(text.begin(), text.end(), test_case), end; it != end; ++it) {
      ++names;
      const std::string name = (*it)[1];
      INFO(entry.path().string() << ": \"" << name << "\"");
      CHECK(name.find(';') == std::string::npos);
    }
  }
  CHECK(names > 100);  // the scan found the suite
}
