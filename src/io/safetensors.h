// safetensors files (https://github.com/huggingface/safetensors, format only): a u64 LE header
// length n, n bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {str: str}}, then the raw little-endian tensor bytes (offsets relative to the data start).
// Used for the golden conformance files and for weight import/export.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace herd::io {

struct SafeTensors {
  std::map<std::string, torch::Tensor> tensors;  // CPU, contiguous, owning
  std::map<std::string, std::string> metadata;   // `__metadata__` (absent -> empty)
  std::vector<std::string> order;                // tensor names in header order

  // The tensor, or a herd::Error naming `file` and the tensor.
  const torch::Tensor& at(const std::string& name) const;
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  std::string file;
};

// Reads a whole file. Every malformed input (truncated file, header length past the end,
// non-JSON header, unknown dtype, offsets out of range, shape/byte-size mismatch) throws one
// herd::Error line naming the file and the tensor.
SafeTensors read_safetensors(const std::string& path);
// Same, from bytes in memory; `name` is used in error messages.
SafeTensors parse_safetensors(const std::string& bytes, const std::string& name);

// Writes tensors (any device/layout; copied to contiguous CPU) with names sorted, the header
// padded with spaces to a multiple of 8. Writes to path.tmp, then renames.
void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
std::string serialize_safetensors(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// "F64" <-> torch::kFloat64 etc.; unknown names/dtypes throw.
torch::Dtype dtype_from_safetensors(const std::string& name);
std::string dtype_to_safetensors(torch::Dtype dtype);

}  // namespace herd::io
