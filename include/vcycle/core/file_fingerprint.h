// A cheap fingerprint of a (large) file: its size and a CRC-32 of up to 64 blocks of 4 KiB spread
// evenly over it, first and last included. Reading ~256 KiB of a token file of any size, it tells
// a resumed run that its data was replaced, re-tokenized, truncated or appended to, without hashing
// gigabytes.
#pragma once

#include <string>

namespace vcycle {

// "size:<bytes>,crc:<hex>"; InputError naming the path when it cannot be read.
std::string file_fingerprint(const std::string& path);

}  // namespace vcycle
