// Shared by the training-parity tests (test_train_parity.cpp, test_train_parity_m2.cpp).
#pragma once

#include <yaml-cpp/yaml.h>

namespace herd::test {

// An imported config.yaml with a parity file's run settings over it: `settings` (YAML sections
// merged key by key), then the file's optimizer lr, weight_decay, betas, eps and grad_clip.
inline YAML::Node with_parity_settings(YAML::Node run, const YAML::Node& settings,
                                       const YAML::Node& parity) {
  for (const auto& section : settings)
    for (const auto& kv : section.second)
      run[section.first.Scalar()][kv.first.Scalar()] = kv.second;
  for (const char* key : {"lr", "weight_decay", "betas", "eps"})
    run["optimizer"][key] = parity[key];
  run["train"]["grad_clip"] = parity["grad_clip"];
  return run;
}

}  // namespace herd::test
