#include "train/optimizer.h"

#include <algorithm>
#include <sstream>

#include "blocks/mixer.h"
#include "core/error.h"
#include "ops/adamw.h"

namespace herd {

std::map<std::string, bool> decay_rule(torch::nn::Module& model,
                                       const std::vector<std::string>& no_decay) {
  auto excluded = [&](const char* kind) {
    return std::find(no_decay.begin(), no_decay.end(), kind) != no_decay.end();
  };
  std::map<std::string, bool> decays;
  for (const auto& kv : model.named_parameters()) decays[kv.key()] = true;
  // Kinds by module type, as safari's add_optimizer_hooks (nn.Embedding, nn.LayerNorm).
  for (const auto& m : model.named_modules()) {
    const auto* mod = m.value().get();
    const bool norm = dynamic_cast<const torch::nn::LayerNormImpl*>(mod) != nullptr;
    const bool embedding = dynamic_cast<const torch::nn::EmbeddingImpl*>(mod) != nullptr;
    if ((norm && excluded("norm")) || (embedding && excluded("embedding")))
      for (const auto& p : mod->named_parameters(false))
        decays[m.key().empty() ? p.key() : m.key() + "." + p.key()] = false;
  }
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const auto& kv : model.named_parameters()) {
    // Embedding tables that are not nn::Embedding modules (ViT's positions, the filters' z).
    const bool table = kv.key().rfind("wte.", 0) == 0 || kv.key().rfind("wpe.", 0) == 0 ||
                       ends_with(kv.key(), "pos_emb.z");
    if (excluded("embedding") && table) decays[kv.key()] = false;
    if (excluded("vector") && kv.value().dim() < 2) decays[kv.key()] = false;
    if (excluded("bias") && ends_with(kv.key(), "bias")) decays[kv.key()] = false;
  }
  return decays;
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

// How a group's origin names a mixer option; describe_param_groups maps it back to the config
// key that herd import's optimizer.sources uses.
const std::string kMixerOption = "mixer option ";

// A tagged parameter's group before optimizer.groups: the block's lr (capped) and weight
// decay, each with where it came from.
ParamGroupPlan tagged_group(const ParamGroupTag& t, double optimizer_lr) {
  ParamGroupPlan g;
  g.lr = t.lr.value_or(optimizer_lr);
  g.lr_from = !t.lr                ? "optimizer.lr"
              : !t.lr_from.empty() ? kMixerOption + t.lr_from
                                   : "block default";
  if (t.max_lr && *t.max_lr < g.lr) {
    g.lr = *t.max_lr;
    g.lr_from = str("block default: at most ", *t.max_lr);
  }
  g.weight_decay = t.weight_decay;
  g.wd_from = !t.wd_from.empty() ? kMixerOption + t.wd_from : "block default";
  return g;
}

}  // namespace

std::vector<ParamGroupPlan> plan_param_groups(torch::nn::Module& model, const OptimizerConfig& cfg,
                                              const std::string& source) {
  const auto tags = cfg.block_groups ? collect_tags(model) : std::vector<FullTag>{};
  const auto decays = decay_rule(model, cfg.no_decay);
  std::vector<ParamGroupPlan> groups{
      {"decay", cfg.lr, cfg.weight_decay, {}, {}, 0, "optimizer.lr", "optimizer.weight_decay"},
      {"no_decay", cfg.lr, 0.0, {}, {}, 0, "optimizer.lr", "optimizer.no_decay"}};
  std::vector<std::string> declared{"decay", "no_decay"};  // names before any ".2" suffix
  auto apply_override = [&](const std::string& name, ParamGroupPlan& g) {
    auto it = cfg.groups.find(name);
    if (it == cfg.groups.end()) return;
    const std::string key = "optimizer.groups." + name;
    if (it->second.lr) g.lr = *it->second.lr, g.lr_from = key + ".lr";
    if (it->second.weight_decay)
      g.weight_decay = *it->second.weight_decay, g.wd_from = key + ".weight_decay";
  };
  apply_override("decay", groups[0]);
  apply_override("no_decay", groups[1]);
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
      group = &groups[decays.at(name) ? 0 : 1];
    } else {
      ParamGroupPlan planned = tagged_group(tag->tag, cfg.lr);
      apply_override(tag->tag.group, planned);
      const double lr = planned.lr, wd = planned.weight_decay;
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
        planned.name = label;
        groups.push_back(planned);
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
  const auto rule = cfg.name == "decoupled_adamw" ? ops::WeightDecayRule::decoupled
                                                  : ops::WeightDecayRule::lr_scaled;
  return std::make_unique<ops::FusedAdamW>(std::move(groups), torch::optim::AdamWOptions(cfg.lr),
                                           rule);
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

std::string describe_param_groups(const std::vector<ParamGroupPlan>& groups,
                                  const OptimizerConfig& cfg) {
  // A value's origin, and where herd import took it from when the config records that.
  auto origin = [&](const std::string& from) {
    std::string key = from;
    if (key.rfind(kMixerOption, 0) == 0) key = "model.mixer." + key.substr(kMixerOption.size());
    auto it = cfg.sources.find(key);
    return it == cfg.sources.end() ? from : from + "; import: " + it->second;
  };
  std::ostringstream out;
  out << "# optimizer: " << cfg.name << " (peak lr, weight decay, tensors, parameters):\n";
  for (const auto& g : groups)
    out << "#   " << g.name << ": lr " << g.lr << " (" << origin(g.lr_from) << "), weight_decay "
        << g.weight_decay << " (" << origin(g.wd_from) << "), " << g.params.size() << " tensors, "
        << g.numel << "\n";
  return out.str();
}

}  // namespace herd
