// Where and how tensors live for a run, and autocast around forward passes.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "config/config.h"

namespace herd {

struct Runtime {
  torch::Device device = torch::kCPU;
  torch::Dtype param_dtype = torch::kFloat32;  // fp64 runs keep parameters in fp64
  std::optional<torch::Dtype> autocast_dtype;  // bf16 autocast
  static Runtime from(const TrainConfig& train);
  std::string describe() const;
};

// Enables autocast (when the runtime asks for it) for the scope of one forward pass.
class AutocastScope {
 public:
  explicit AutocastScope(const Runtime& rt);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType type_;
  bool on_;
};

}  // namespace herd
