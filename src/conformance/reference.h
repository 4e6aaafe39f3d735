// Builds herd modules from the reference code's constructor arguments, for `herd conformance`
// and for importing weights trained with the reference repositories (safari, m2, PyTorch).
// Every golden adapter lives in src/conformance; the blocks know nothing of them.
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace herd {

struct ReferenceModule {
  std::shared_ptr<torch::nn::Module> module;
  // Reference parameter/buffer name (as in the golden file without the "param."/"buffer."
  // prefix) -> herd's name in module->named_parameters() / named_buffers().
  std::map<std::string, std::string> name_map;
  // Runs the module on the golden inputs ("input", and "target" where present) and returns
  // the tensor that "output" holds.
  std::function<torch::Tensor(const std::map<std::string, torch::Tensor>& inputs)> forward;
};

// config: the file's `config` metadata (JSON of the reference constructor arguments);
// variant: the file's `variant` metadata. Shapes come from config, never from code.
using ReferenceBuilder =
    std::function<ReferenceModule(const YAML::Node& config, const std::string& variant)>;

struct ReferenceEntry {
  std::string block;  // the golden file's `block` metadata
  ReferenceBuilder build;
};

const std::vector<ReferenceEntry>& reference_registry();
const ReferenceEntry& find_reference(const std::string& block);  // throws herd::Error

}  // namespace herd
