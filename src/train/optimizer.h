// AdamW over parameter groups. Untagged parameters form the stack's two groups: "decay"
// (optimizer.weight_decay) and "no_decay" (0), split by optimizer.no_decay: by default 1-D
// parameters and embeddings stay out of decay, the usual GPT recipe; safari's Pile runs and m2
// decay every untagged parameter (no_decay: []). Blocks tag parameters of their own
// (SequenceMixerImpl::param_group_tags: H3's SSM, the implicit filters, their positional features)
// as safari and m2 do with `_optim`, and optimizer.groups.<name> overrides any group's lr or weight
// decay. The schedule scales every group's peak lr by the same factor. The optimizer is
// ops::FusedAdamW: torch's AdamW (same update, same state and checkpoints) with a fused step.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace herd {

struct ParamGroupPlan {
  std::string name;  // "decay", "no_decay", a block's group ("filter"), "filter.2" on a clash
  double lr = 0, weight_decay = 0;  // peak lr
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
  int64_t numel = 0;
  std::string lr_from, wd_from;  // where lr and weight decay came from, for `herd config check`
};

// The groups of `model` (empty ones left out) in a fixed order: decay, no_decay, then the
// blocks' groups as their parameters first appear. `source` names the config in errors (an
// optimizer.groups entry that matches no group).
std::vector<ParamGroupPlan> plan_param_groups(torch::nn::Module& model, const OptimizerConfig& cfg,
                                              const std::string& source = "config");
std::unique_ptr<torch::optim::AdamW> make_optimizer(const std::vector<ParamGroupPlan>& groups,
                                                    const OptimizerConfig& cfg);
std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerConfig& cfg);
// The untagged parameters that decay under optimizer.no_decay (name -> decays).
std::map<std::string, bool> decay_rule(torch::nn::Module& model,
                                       const std::vector<std::string>& no_decay);
// Each group's lr = its peak lr x factor (the schedule's lr / optimizer.lr).
void set_lr(torch::optim::Optimizer& optimizer, const std::vector<ParamGroupPlan>& groups,
            double factor);
// "# optimizer groups:" lines for `herd config check`.
std::string describe_param_groups(const std::vector<ParamGroupPlan>& groups,
                                  const OptimizerConfig& cfg);

}  // namespace herd
