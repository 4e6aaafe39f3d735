// AdamW with a fused step: torch::optim::AdamW's update (decoupled weight decay, bias
// corrections, kernels/adamw.cuh) in one multithreaded pass over every parameter's elements,
// instead of ~10 tensor ops and 3 temporaries per parameter. The optimizer state stays in
// torch's own AdamWParamState objects (exp_avg, exp_avg_sq, step), so checkpoints saved by
// either optimizer load into the other (ckpt::save/load_optimizer unchanged).
// Two weight-decay rules, one flag (WeightDecayRule): torch's AdamW multiplies a parameter by
// 1 - lr * wd each step; composer's DecoupledAdamW (m2's pretraining optimizer) by
// 1 - (lr / initial_lr) * wd, initial_lr being the group's lr when the optimizer was built, so
// wd follows the schedule but is not scaled by the learning rate.
// Per parameter, choose_path("adamw", ...) picks the fused kernel when adamw_supports() it;
// anything else (amsgrad, sparse or strided gradients, other dtypes) takes the reference,
// torch's own sequence of ops.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "ops/kernel_path.h"

namespace herd::ops {

enum class WeightDecayRule { lr_scaled, decoupled };

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  // Records each group's lr now as its initial_lr (the decoupled rule's denominator).
  FusedAdamW(std::vector<torch::optim::OptimizerParamGroup> groups,
             torch::optim::AdamWOptions defaults, WeightDecayRule rule);
  torch::Tensor step(LossClosure closure = nullptr) override;
  WeightDecayRule rule() const { return rule_; }

 private:
  WeightDecayRule rule_ = WeightDecayRule::lr_scaled;
  // Per group; a group without one takes its lr at its first step, as composer does.
  std::vector<double> initial_lr_;
};

// One parameter's step: its tensor, gradient, (initialized) state and group options.
struct AdamWParam {
  torch::Tensor param, grad;
  torch::optim::AdamWParamState* state = nullptr;
  const torch::optim::AdamWOptions* options = nullptr;
  WeightDecayRule rule = WeightDecayRule::lr_scaled;
  double initial_lr = 0;  // decoupled: the group's lr at construction (0: factor 1, as composer)
};

// What one step's weight decay takes off: p *= 1 - adamw_decay_rate(p).
double adamw_decay_rate(const AdamWParam& p);

// Float or double, dense, contiguous parameter, gradient and moments of one dtype and device
// (CPU, or CUDA when compiled), no amsgrad.
Support adamw_supports(const AdamWParam& p);
Support adamw_supports(const OpTarget& t);

// Explicit paths (each increments the steps and updates parameters and moments in place):
// _reference runs torch::optim::AdamW::step's ops one parameter at a time; _fused runs every
// parameter in one pass and throws herd::Error for one it does not support.
void adamw_step_reference(const std::vector<AdamWParam>& params);
void adamw_step_fused(const std::vector<AdamWParam>& params);
// Each parameter on the path choose_path("adamw", ...) picks: FusedAdamW::step's, and the
// sharded optimizer's (dist/zero.h) on its slices.
void adamw_step(const std::vector<AdamWParam>& params);

}  // namespace herd::ops
