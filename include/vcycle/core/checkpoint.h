// Crash-safe checkpoints.
//
// File layout (all integers little-endian):
//   magic "VCYCKPT\0" (8 bytes) | version u32 | body length u64 | crc32(body) u32 | body
//   body = meta length u32 | meta (JSON text) | blob count u32 | { name length u32 | name | length u64 | bytes }*
//          | tensor archive length u64 | tensor archive (torch::serialize::OutputArchive bytes)
// Saving writes "<path>.tmp.<pid>", fsyncs, hard-links the current file to "<path>.prev" and renames the new
// one into place: at every instant a complete checkpoint exists. Loading checks the magic, version,
// length and checksum, and names what is wrong.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "vcycle/core/tensor_map.h"

namespace vcycle {

constexpr uint32_t kCheckpointVersion = 1;

struct Checkpoint {
  std::string meta_json;                     // run position and counters (JSON object text)
  std::map<std::string, std::string> blobs;  // opaque byte strings (optimizer state, RNG state)
  TensorMap tensors;                         // named tensors (saved on CPU)
};

std::string checkpoint_to_bytes(const Checkpoint& ckpt);
// `what` names the source in error messages (usually the path).
Checkpoint checkpoint_from_bytes(const std::string& bytes, const std::string& what);

void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Throws InputError naming the path and the fault (missing, truncated, wrong magic/version, checksum).
Checkpoint load_checkpoint(const std::string& path);

}  // namespace vcycle
