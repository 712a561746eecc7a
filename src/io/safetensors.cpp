// safetensors reader and writer; see include/vcycle/io/safetensors.h.
#include "vcycle/io/safetensors.h"

#include <cstdint>
#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "vcycle/core/errors.h"
#include "vcycle/core/file_util.h"

namespace vcycle {

namespace {

using json = nlohmann::json;

// The format is little-endian; so is every machine LibTorch 1.13/2.x runs this project on.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

// The one table of dtype names.
const std::map<std::string, torch::ScalarType>& dtype_table() {
  static const std::map<std::string, torch::ScalarType> table = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  return table;
}

std::string dtype_name(torch::ScalarType t, const std::string& tensor) {
  for (const auto& [name, type] : dtype_table()) {
    if (type == t) return name;
  }
  throw InputError("safetensors: tensor '" + tensor + "' has dtype " + std::string(c10::toString(t)) +
                   ", which the format does not carry");
}

}  // namespace

std::string safetensors_to_bytes(const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t n = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type(), name)}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t len = text.size();
  std::memcpy(out.data(), &len, 8);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& c : data) out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return out;
}

TensorMap safetensors_from_bytes(const std::string& bytes, const std::string& what, SafetensorsMetadata* metadata) {
  if (bytes.size() < 8) throw InputError(what + ": not a safetensors file (" + std::to_string(bytes.size()) + " bytes)");
  uint64_t len = 0;
  std::memcpy(&len, bytes.data(), 8);
  if (len > bytes.size() - 8) {
    throw InputError(what + ": safetensors header length " + std::to_string(len) + " runs past the end of the file (" +
                     std::to_string(bytes.size()) + " bytes)");
  }
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(len));
  } catch (const json::exception& e) {
    throw InputError(what + ": safetensors header is not JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw InputError(what + ": safetensors header is not a JSON object");
  const char* data = bytes.data() + 8 + len;
  const uint64_t data_size = bytes.size() - 8 - len;
  TensorMap out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (metadata) {
        for (const auto& [k, v] : entry.items()) (*metadata)[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
      continue;
    }
    const std::string where = what + ": tensor '" + name + "'";
    try {
      const std::string dtype = entry.at("dtype").get<std::string>();
      const auto it = dtype_table().find(dtype);
      if (it == dtype_table().end()) throw InputError(where + ": unsupported dtype " + dtype);
      const auto shape = entry.at("shape").get<std::vector<int64_t>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
        throw InputError(where + ": data_offsets " + entry.at("data_offsets").dump() + " outside the data section (" +
                         std::to_string(data_size) + " bytes)");
      }
      auto t = torch::empty(shape, torch::TensorOptions().dtype(it->second));
      const uint64_t n = static_cast<uint64_t>(t.numel()) * t.element_size();
      if (n != offsets[1] - offsets[0]) {
        throw InputError(where + ": shape " + entry.at("shape").dump() + " of " + dtype + " needs " + std::to_string(n) +
                         " bytes, data_offsets give " + std::to_string(offsets[1] - offsets[0]));
      }
      if (n > 0) std::memcpy(t.data_ptr(), data + offsets[0], n);  // an empty tensor has no storage to copy to
      out[name] = t;
    } catch (const json::exception& e) {
      throw InputError(where + ": malformed entry " + entry.dump() + " (" + e.what() + ")");
    }
  }
  return out;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  write_file_atomic(path, safetensors_to_bytes(tensors, metadata));
}

TensorMap load_safetensors(const std::string& path, SafetensorsMetadata* metadata) {
  return safetensors_from_bytes(read_file(path), path, metadata);
}

}  // namespace vcycle
