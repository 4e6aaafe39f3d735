#include "train/optimizer.h"

#include <algorithm>
#include <sstream>

#include "blocks/mixer.h"
#include "core/error.h"
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

namespace {

struct FullTag {
  std::string prefix;  // from the model's root
  ParamGroupTag tag;
};

// Every mixer's tags, prefixed with the mixer's own path in the model.
std::vector<FullTag> collect_tags(torch::nn::Module& model) {
  std::vector<FullTag> tags;
  for (const auto& item : model.named_modules()) {
    const auto* mixer = dynamic_cast<const SequenceMixerImpl*>(item.value().get());
    if (!mixer) continue;
    for (const auto& t : mixer->param_group_tags())
      tags.push_back({item.key().empty() ? t.prefix : item.key() + "." + t.prefix, t});
  }
  return tags;
}

}  // namespace

std::vector<ParamGroupPlan> plan_param_groups(torch::nn::Module& model, const OptimizerConfig& cfg,
                                              const std::string& source) {
  const auto tags = collect_tags(model);
  std::vector<ParamGroupPlan> groups{{"decay", cfg.lr, cfg.weight_decay, {}, {}, 0},
                                     {"no_decay", cfg.lr, 0.0, {}, {}, 0}};
  std::vector<std::string> declared{"decay", "no_decay"};  // names before any ".2" suffix
  auto apply_override = [&](const std::string& name, double& lr, double& wd) {
    auto it = cfg.groups.find(name);
    if (it == cfg.groups.end()) return;
    if (it->second.lr) lr = *it->second.lr;
    if (it->second.weight_decay) wd = *it->second.weight_decay;
  };
  apply_override("decay", groups[0].lr, groups[0].weight_decay);
  apply_override("no_decay", groups[1].lr, groups[1].weight_decay);
  for (const auto& kv : model.named_parameters()) {
    if (!kv.value().requires_grad()) continue;
    const std::string& name = kv.key();
    const FullTag* tag = nullptr;
    for (const auto& t : tags)
      if (name.rfind(t.prefix, 0) == 0) {
        tag = &t;
        break;
      }
    ParamGroupPlan* group = nullptr;
    if (!tag) {
      group = &groups[decays(name, kv.value()) ? 0 : 1];
    } else {
      double lr = tag->tag.lr.value_or(cfg.lr);
      if (tag->tag.max_lr) lr = std::min(lr, *tag->tag.max_lr);
      double wd = tag->tag.weight_decay;
      apply_override(tag->tag.group, lr, wd);
      if (std::find(declared.begin(), declared.end(), tag->tag.group) == declared.end())
        declared.push_back(tag->tag.group);
      // One group per (name, lr, weight decay): layers configured differently stay apart.
      int same_name = 0;
      for (auto& g : groups) {
        const bool named = g.name == tag->tag.group || g.name.rfind(tag->tag.group + ".", 0) == 0;
        same_name += named;
        if (named && g.lr == lr && g.weight_decay == wd) group = &g;
      }
      if (!group) {
        const auto label =
            same_name == 0 ? tag->tag.group : tag->tag.group + "." + std::to_string(same_name + 1);
        groups.push_back({label, lr, wd, {}, {}, 0});
        group = &groups.back();
      }
    }
    group->names.push_back(name);
    group->params.push_back(kv.value());
    group->numel += kv.value().numel();
  }
  for (const auto& [name, o] : cfg.groups) {
    if (std::find(declared.begin(), declared.end(), name) != declared.end()) continue;
    std::string known;
    for (const auto& d : declared) known += (known.empty() ? "" : ", ") + d;
    throw Error(str(source, " optimizer.groups.", name,
                    ": no such parameter group in this model (its groups: ", known, ")"));
  }
  groups.erase(std::remove_if(groups.begin(), groups.end(),
                              [](const ParamGroupPlan& g) { return g.params.empty(); }),
               groups.end());
  return groups;
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(const std::vector<ParamGroupPlan>& plan,
                                                    const OptimizerConfig& cfg) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const auto& g : plan)
    groups.emplace_back(
        g.params, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(g.lr)
                                                                   .betas({cfg.beta1, cfg.beta2})
                                                                   .eps(cfg.eps)
                                                                   .weight_decay(g.weight_decay)));
  // The fused step (ops/adamw.h): torch's AdamW update and state, one pass per step.
  return std::make_unique<ops::FusedAdamW>(groups, torch::optim::AdamWOptions(cfg.lr));
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerConfig& cfg) {
  return make_optimizer(plan_param_groups(model, cfg), cfg);
}

void set_lr(torch::optim::Optimizer& optimizer, const std::vector<ParamGroupPlan>& groups,
            double factor) {
  auto& param_groups = optimizer.param_groups();
  HERD_CHECK(param_groups.size() == groups.size(), "optimizer: ", param_groups.size(),
             " parameter groups, the plan has ", groups.size());
  for (size_t i = 0; i < groups.size(); ++i)
    param_groups[i].options().set_lr(groups[i].lr * factor);
}

std::string describe_param_groups(const std::vector<ParamGroupPlan>& groups) {
  std::ostringstream out;
  out << "# optimizer groups (peak lr, weight decay, tensors, parameters):\n";
  for (const auto& g : groups)
    out << "#   " << g.name << ": lr " << g.lr << ", weight_decay " << g.weight_decay << ", "
        << g.params.size() << " tensors, " << g.numel << "\n";
  return out.str();
}

}  // namespace herd
