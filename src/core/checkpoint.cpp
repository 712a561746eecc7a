// Checkpoint file format; see include/vcycle/core/checkpoint.h.
#include "vcycle/core/checkpoint.h"

#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <sstream>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"

namespace vcycle {

namespace {

constexpr char kMagic[8] = {'V', 'C', 'Y', 'C', 'K', 'P', 'T', '\0'};
constexpr size_t kHeaderBytes = 8 + 4 + 8 + 4;

template <typename T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

void put_bytes(std::string& out, const std::string& s, bool wide) {
  if (wide) put<uint64_t>(out, s.size());
  else put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out += s;
}

// Reads from a byte string, failing with a message that names the file on any overrun.
struct Reader {
  const std::string& data;
  size_t pos;
  const std::string& what;
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string bytes(uint64_t n) {
    need(n);
    std::string s = data.substr(pos, n);
    pos += n;
    return s;
  }
  void need(uint64_t n) const {
    if (n > data.size() - pos) throw InputError(what + ": checkpoint is corrupt (a field runs past the end)");
  }
};

uint32_t crc_of(const char* p, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p), chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

std::string checkpoint_to_bytes(const Checkpoint& ckpt) {
  std::string body;
  put_bytes(body, ckpt.meta_json, false);
  put<uint32_t>(body, static_cast<uint32_t>(ckpt.blobs.size()));
  for (const auto& [name, bytes] : ckpt.blobs) {
    put_bytes(body, name, false);
    put_bytes(body, bytes, true);
  }
  torch::serialize::OutputArchive archive;
  for (const auto& [name, t] : ckpt.tensors) archive.write(name, t.detach().to(torch::kCPU).contiguous());
  std::ostringstream tensor_bytes;
  archive.save_to(tensor_bytes);
  put_bytes(body, tensor_bytes.str(), true);

  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kCheckpointVersion);
  put<uint64_t>(out, body.size());
  put<uint32_t>(out, crc_of(body.data(), body.size()));
  out += body;
  return out;
}

Checkpoint checkpoint_from_bytes(const std::string& bytes, const std::string& what) {
  if (bytes.empty()) throw InputError(what + ": checkpoint is empty");
  if (bytes.size() < kHeaderBytes) {
    if (bytes.compare(0, std::min(bytes.size(), sizeof(kMagic)), kMagic, std::min(bytes.size(), sizeof(kMagic))) != 0) {
      throw InputError(what + ": not a vcycle checkpoint (wrong magic)");
    }
    throw InputError(what + ": checkpoint is truncated (" + std::to_string(bytes.size()) + " bytes, header needs " +
                     std::to_string(kHeaderBytes) + ")");
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) throw InputError(what + ": not a vcycle checkpoint (wrong magic)");
  Reader r{bytes, sizeof(kMagic), what};
  const auto version = r.get<uint32_t>();
  if (version != kCheckpointVersion) {
    throw InputError(what + ": checkpoint format version " + std::to_string(version) + ", this build reads version " +
                     std::to_string(kCheckpointVersion));
  }
  const auto body_len = r.get<uint64_t>();
  const auto crc = r.get<uint32_t>();
  if (bytes.size() - kHeaderBytes < body_len) {
    throw InputError(what + ": checkpoint is truncated (" + std::to_string(bytes.size() - kHeaderBytes) + " of " +
                     std::to_string(body_len) + " body bytes)");
  }
  if (bytes.size() - kHeaderBytes > body_len) throw InputError(what + ": checkpoint has trailing bytes after its body");
  if (crc_of(bytes.data() + kHeaderBytes, body_len) != crc) throw InputError(what + ": checkpoint checksum mismatch (file is corrupt)");

  Checkpoint ckpt;
  ckpt.meta_json = r.bytes(r.get<uint32_t>());
  const auto n_blobs = r.get<uint32_t>();
  for (uint32_t i = 0; i < n_blobs; ++i) {
    std::string name = r.bytes(r.get<uint32_t>());
    ckpt.blobs[name] = r.bytes(r.get<uint64_t>());
  }
  const std::string archive_bytes = r.bytes(r.get<uint64_t>());
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(archive_bytes);
    archive.load_from(in);
    for (const auto& key : archive.keys()) {
      torch::Tensor t;
      archive.read(key, t);
      ckpt.tensors[key] = t;
    }
  } catch (const c10::Error& e) {
    throw InputError(what + ": checkpoint tensors cannot be read: " + e.what_without_backtrace());
  }
  return ckpt;
}

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  // Keep the last good checkpoint as "<path>.prev" until the new one is complete and renamed.
  const std::string prev = path + ".prev";
  require_replaceable(path);
  require_replaceable(prev);
  const std::string bytes = checkpoint_to_bytes(ckpt);
  std::filesystem::create_directories(std::filesystem::absolute(path).parent_path());
  if (std::filesystem::exists(path)) {
    ::unlink(prev.c_str());
    if (::link(path.c_str(), prev.c_str()) != 0) throw RunError(prev + ": cannot keep previous checkpoint");
  }
  write_file_atomic(path, bytes);
}

Checkpoint load_checkpoint(const std::string& path) {
  require_readable_file(path, "checkpoint");
  return checkpoint_from_bytes(read_file(path), path);
}

}  // namespace vcycle
