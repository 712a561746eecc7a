// Sampled file fingerprints; see include/vcycle/core/file_fingerprint.h.
#include "vcycle/core/file_fingerprint.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "vcycle/core/errors.h"

namespace vcycle {

std::string file_fingerprint(const std::string& path) {
  constexpr uint64_t kBlock = 4096;
  constexpr uint64_t kBlocks = 64;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw InputError(path + ": cannot open (" + std::strerror(errno) + ")");
  const auto size = static_cast<uint64_t>(in.tellg());
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buf(kBlock);
  const uint64_t last_start = size > kBlock ? size - kBlock : 0;
  for (uint64_t i = 0; i < kBlocks; ++i) {
    const uint64_t start = kBlocks > 1 ? last_start * i / (kBlocks - 1) : 0;
    const uint64_t n = std::min(kBlock, size - start);
    in.seekg(static_cast<std::streamoff>(start));
    if (n > 0 && !in.read(buf.data(), static_cast<std::streamsize>(n))) throw InputError(path + ": cannot read");
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n));
    if (size <= kBlock) break;  // one block holds it all
  }
  return fmt::format("size:{},crc:{:08x}", size, static_cast<uint32_t>(crc));
}

}  // namespace vcycle
