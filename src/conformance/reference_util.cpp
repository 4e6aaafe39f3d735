#include "conformance/reference_util.h"

#include <algorithm>

#include "core/error.h"

namespace herd::ref {
namespace {

YAML::Node lookup(const YAML::Node& config, const std::string& block, const std::string& key) {
  HERD_CHECK(config.IsMap(), block, " config: expected a JSON object, got \"", YAML::Dump(config),
             "\"");
  YAML::Node n = config[key];
  HERD_CHECK(n.IsDefined() && !n.IsNull(), block, " config: missing key \"", key, "\"");
  return n;
}

template <typename T>
T as(const YAML::Node& n, const std::string& block, const std::string& key, const char* form) {
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    throw Error(
        str(block, " config: key \"", key, "\": expected ", form, ", got \"", YAML::Dump(n), "\""));
  }
}

bool present(const YAML::Node& config, const std::string& key) {
  return config.IsMap() && config[key].IsDefined() && !config[key].IsNull();
}

}  // namespace

int64_t get_int(const YAML::Node& config, const std::string& block, const std::string& key) {
  return as<int64_t>(lookup(config, block, key), block, key, "an integer");
}
double get_double(const YAML::Node& config, const std::string& block, const std::string& key) {
  return as<double>(lookup(config, block, key), block, key, "a number");
}
bool get_bool(const YAML::Node& config, const std::string& block, const std::string& key) {
  return as<bool>(lookup(config, block, key), block, key, "true or false");
}
std::string get_string(const YAML::Node& config, const std::string& block, const std::string& key) {
  return as<std::string>(lookup(config, block, key), block, key, "a string");
}
int64_t get_int(const YAML::Node& config, const std::string& block, const std::string& key,
                int64_t def) {
  return present(config, key) ? get_int(config, block, key) : def;
}
double get_double(const YAML::Node& config, const std::string& block, const std::string& key,
                  double def) {
  return present(config, key) ? get_double(config, block, key) : def;
}
bool get_bool(const YAML::Node& config, const std::string& block, const std::string& key,
              bool def) {
  return present(config, key) ? get_bool(config, block, key) : def;
}

std::string get_string(const YAML::Node& config, const std::string& block, const std::string& key,
                       const std::string& def) {
  return present(config, key) ? get_string(config, block, key) : def;
}

std::map<std::string, std::string> nest_kernel_names(
    const std::map<std::string, std::string>& name_map, const std::vector<std::string>& kernels) {
  std::map<std::string, std::string> out;
  for (const auto& [ref_name, herd_name] : name_map) {
    std::string r = ref_name;
    for (const auto& prefix : kernels)
      if (r.rfind(prefix, 0) == 0) r = prefix + "kernel." + r.substr(prefix.size());
    out[r] = herd_name;
  }
  return out;
}

void check_keys(const YAML::Node& config, const std::string& block,
                const std::vector<std::string>& known) {
  HERD_CHECK(config.IsMap(), block, " config: expected a JSON object");
  for (const auto& kv : config) {
    const auto key = kv.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string names;
    for (const auto& k : known) names += (names.empty() ? "" : "|") + k;
    throw Error(str(block, " config: unsupported key \"", key, "\" (herd models ", names, ")"));
  }
}

void check_variant(const std::string& block, const std::string& variant,
                   const std::vector<std::string>& known) {
  if (std::find(known.begin(), known.end(), variant) != known.end()) return;
  std::string names;
  for (const auto& k : known) names += (names.empty() ? "" : "|") + k;
  throw Error(str(block, ": unknown variant \"", variant, "\" (expected ", names, ")"));
}

std::map<std::string, std::string> identity_map(const torch::nn::Module& module) {
  std::map<std::string, std::string> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.key();
  return out;
}

const torch::Tensor& input_of(const std::map<std::string, torch::Tensor>& inputs) {
  auto it = inputs.find("input");
  HERD_CHECK(it != inputs.end(), "golden file has no tensor \"input\"");
  return it->second;
}

}  // namespace herd::ref

namespace herd {

std::map<std::string, std::string> identity_map_with_buffers(const torch::nn::Module& module) {
  std::map<std::string, std::string> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.key();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.key();
  return out;
}

ReferenceModule mirrored_reference(std::shared_ptr<torch::nn::Module> module,
                                   std::function<torch::Tensor(const torch::Tensor&)> fwd) {
  ReferenceModule out;
  out.name_map = identity_map_with_buffers(*module);
  out.module = std::move(module);
  out.forward = [fwd](const std::map<std::string, torch::Tensor>& in) {
    return fwd(ref::input_of(in));
  };
  return out;
}

}  // namespace herd
