// The model a config's `model.stack` names, for code that only needs a module (config check,
// parameter counts); training code builds Gpt, Bert or Vit directly for their APIs.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "config/config.h"

namespace herd {

std::shared_ptr<torch::nn::Module> build_model(const ModelConfig& cfg);

}  // namespace herd
