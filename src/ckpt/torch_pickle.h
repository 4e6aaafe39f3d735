// Reads files written by Python's torch.save (the zip layout: archive/data.pkl plus one record
// per storage) without Python. A small, tolerant unpickler: plain containers become values,
// tensors are rebuilt from their storages honouring size, stride and storage offset, and any
// other class (Lightning's AttributeDict, omegaconf's DictConfig, ...) becomes an opaque
// object that keeps its constructor arguments and state, so a checkpoint that pickles foreign
// objects next to its weights still reads. LibTorch's own torch::pickle_load turns an
// OrderedDict (every state_dict) into None, hence this reader.
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace herd::ckpt {

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

// One unpickled Python value. Containers are shared (the pickle memo aliases them).
struct PyValue {
  enum class Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Tensor, Global, Object };
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                              // Str, Bytes; Global/Object: "module.name"
  std::vector<PyRef> items;                   // List, Tuple; Object: constructor arguments
  std::vector<std::pair<PyRef, PyRef>> dict;  // Dict (insertion order); Object: its state
  PyRef state;                                // Object: BUILD state (may be null)
  torch::Tensor tensor;                       // Tensor (contiguous, owning)

  // Dict entry by string key, or null.
  PyRef get(const std::string& key) const;
  bool is_str_dict() const;
};

// The root object of a torch.save file; errors name the file.
PyRef read_torch_file(const std::string& path);

// Every tensor of a flat {name: tensor} dict (non-tensor entries are skipped); throws when
// `v` is not a dict.
std::map<std::string, torch::Tensor> tensors_of(const PyRef& v, const std::string& where);

// Plain containers as YAML (dicts, lists, scalars); opaque objects become their state
// (omegaconf's DictConfig: its `_content`), anything else null.
YAML::Node to_yaml_node(const PyRef& v);

}  // namespace herd::ckpt
