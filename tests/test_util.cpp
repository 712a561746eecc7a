#include "test_util.h"

#include <fstream>
#include <random>

#include "vcycle/data.h"

namespace vcycle::test {

TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / ("vcycle_test_" + tag + "_" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::absolute(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string source_path(const std::string& rel) { return std::string(VCYCLE_SOURCE_DIR) + "/" + rel; }

void prepare_fixture_corpus(const std::string& dir) {
  ByteTokenizer tok;
  PrepareOptions opt;
  opt.chunk_bytes = 1024;
  opt.valid_fraction = 0.1;
  prepare_text(source_path("tests/fixtures/corpus.txt"), dir, tok, opt);
}

}  // namespace vcycle::test
