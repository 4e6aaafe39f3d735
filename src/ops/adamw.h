// AdamW with a fused step: torch::optim::AdamW's update (decoupled weight decay, bias
// corrections, kernels/adamw.cuh) in one multithreaded pass over every parameter's elements,
// instead of ~10 tensor ops and 3 temporaries per parameter. The optimizer state stays in
// torch's own AdamWParamState objects (exp_avg, exp_avg_sq, step), so checkpoints saved by
// either optimizer load into the other (ckpt::save/load_optimizer unchanged).
// Per parameter, choose_path("adamw", ...) picks the fused kernel when adamw_supports() it;
// anything else (amsgrad, sparse or strided gradients, other dtypes) takes the reference,
// torch's own sequence of ops.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "ops/kernel_path.h"

namespace herd::ops {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// One parameter's step: its tensor, gradient, (initialized) state and group options.
struct AdamWParam {
  torch::Tensor param, grad;
  torch::optim::AdamWParamState* state = nullptr;
  const torch::optim::AdamWOptions* options = nullptr;
};

// Float or double, dense, contiguous parameter, gradient and moments of one dtype and device
// (CPU, or CUDA when compiled), no amsgrad.
Support adamw_supports(const AdamWParam& p);
Support adamw_supports(const OpTarget& t);

// Explicit paths (each increments the steps and updates parameters and moments in place):
// _reference runs torch::optim::AdamW::step's ops one parameter at a time; _fused runs every
// parameter in one pass and throws herd::Error for one it does not support.
void adamw_step_reference(const std::vector<AdamWParam>& params);
void adamw_step_fused(const std::vector<AdamWParam>& params);

}  // namespace herd::ops
