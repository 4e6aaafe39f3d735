// Helpers for reference adapters: typed reads of a golden file's `config` JSON (errors name
// the block and key) and the common name-map / forward shapes.
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "conformance/reference.h"

namespace herd::ref {

// Required keys: a missing or mistyped key throws "<block> config: key \"k\": expected ...".
int64_t get_int(const YAML::Node& config, const std::string& block, const std::string& key);
double get_double(const YAML::Node& config, const std::string& block, const std::string& key);
bool get_bool(const YAML::Node& config, const std::string& block, const std::string& key);
std::string get_string(const YAML::Node& config, const std::string& block, const std::string& key);
// Optional keys: `def` when absent.
int64_t get_int(const YAML::Node& config, const std::string& block, const std::string& key,
                int64_t def);
double get_double(const YAML::Node& config, const std::string& block, const std::string& key,
                  double def);
bool get_bool(const YAML::Node& config, const std::string& block, const std::string& key, bool def);
std::string get_string(const YAML::Node& config, const std::string& block, const std::string& key,
                       const std::string& def);  // also `def` for JSON null (Python None)

// Throws when config holds a key outside `known`: an option herd does not model must not be
// silently ignored.
void check_keys(const YAML::Node& config, const std::string& block,
                const std::vector<std::string>& known);

// Throws "<block>: unknown variant \"v\" (expected a|b)" unless variant is in `known`.
void check_variant(const std::string& block, const std::string& variant,
                   const std::vector<std::string>& known);

// safari nests each SSM kernel's parameters one level deeper than herd (`kernel.kernel.C` for
// herd's `kernel.C`): the reference names of `name_map` whose first component is one of
// `kernels` (e.g. "kernel.") get that component once more.
std::map<std::string, std::string> nest_kernel_names(
    const std::map<std::string, std::string>& name_map, const std::vector<std::string>& kernels);

// Every parameter of `module` under its own name (for modules that mirror the reference names).
std::map<std::string, std::string> identity_map(const torch::nn::Module& module);

// The "input" tensor of a golden file, with a clear error when absent.
const torch::Tensor& input_of(const std::map<std::string, torch::Tensor>& inputs);

}  // namespace herd::ref

namespace herd {

// Every parameter and buffer of `module` under its own name.
std::map<std::string, std::string> identity_map_with_buffers(const torch::nn::Module& module);

// A ReferenceModule whose names mirror the reference exactly, running fwd on "input".
ReferenceModule mirrored_reference(std::shared_ptr<torch::nn::Module> module,
                                   std::function<torch::Tensor(const torch::Tensor&)> fwd);

}  // namespace herd
