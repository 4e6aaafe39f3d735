// AdamW with two parameter groups: weight decay on matrices, none on norms, biases and
// embeddings (the usual GPT recipe). The optimizer is ops::FusedAdamW: torch's AdamW (same
// update, same state and checkpoints) with a fused step.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "config/config.h"

namespace herd {

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerConfig& cfg);
// Whether a named parameter is decayed: 2-D+ weights that are not embeddings.
bool decays(const std::string& name, const torch::Tensor& param);
void set_lr(torch::optim::Optimizer& optimizer, double lr);

}  // namespace herd
