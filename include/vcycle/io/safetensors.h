// safetensors: the tensor file format of the Hugging Face ecosystem, read and written here without a
// dependency (the format is small enough to own).
//
// Layout: header length N (u64, little-endian) | N bytes of JSON | raw tensor data.
// The JSON maps each tensor name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
// (byte offsets into the data section) and may hold "__metadata__": {string: string}. Data is
// little-endian and row-major; the header is padded with spaces to a multiple of 8 bytes, as the
// reference writer does, so every tensor starts aligned.
//
//   save_safetensors("model.safetensors", tensors, {{"format", "pt"}});
//   TensorMap t = load_safetensors("model.safetensors");
#pragma once

#include <map>
#include <string>

#include "vcycle/core/tensor_map.h"

namespace vcycle {

using SafetensorsMetadata = std::map<std::string, std::string>;

// The file's bytes. Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Tensors are made
// contiguous on the CPU first. InputError naming the tensor for an unsupported dtype.
std::string safetensors_to_bytes(const TensorMap& tensors, const SafetensorsMetadata& metadata = {});
// Parses the bytes; InputError naming `what` (usually the path) and the tensor on any fault: short
// file, header length past the end, bad JSON, unknown dtype, offsets outside the data or not
// matching the shape.
TensorMap safetensors_from_bytes(const std::string& bytes, const std::string& what,
                                 SafetensorsMetadata* metadata = nullptr);

// Crash-safe write (write_file_atomic); RunError on an I/O failure.
void save_safetensors(const std::string& path, const TensorMap& tensors, const SafetensorsMetadata& metadata = {});
TensorMap load_safetensors(const std::string& path, SafetensorsMetadata* metadata = nullptr);

}  // namespace vcycle
