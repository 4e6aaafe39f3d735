#include "train/optimizer.h"

#include "ops/adamw.h"

namespace herd {

bool decays(const std::string& name, const torch::Tensor& param) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const bool embedding =
      name.rfind("wte.", 0) == 0 || name.rfind("wpe.", 0) == 0 || ends_with("pos_emb.z");
  return param.dim() >= 2 && !embedding;
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerConfig& cfg) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& kv : model.named_parameters()) {
    if (!kv.value().requires_grad()) continue;
    (decays(kv.key(), kv.value()) ? decay : no_decay).push_back(kv.value());
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(cfg.lr)
                                                            .betas({cfg.beta1, cfg.beta2})
                                                            .eps(cfg.eps)
                                                            .weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(cfg.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  // The fused step (ops/adamw.h): torch's AdamW update and state, one pass per step.
  return std::make_unique<ops::FusedAdamW>(groups, torch::optim::AdamWOptions(cfg.lr));
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace herd
