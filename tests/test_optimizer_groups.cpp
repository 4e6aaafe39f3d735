// Optimizer parameter groups: the blocks' own declarations (H3's SSM parameters, the implicit
// filters and their positional features, as safari and m2 tag them), optimizer.groups
// overrides, the schedule scaling every group, and the errors for groups that do not exist.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"
#include "core/error.h"
#include "models/gpt.h"
#include "models/stack.h"
#include "train/optimizer.h"

namespace herd {
namespace {

Config parse(const std::string& yaml) {
  return parse_config(YAML::Load(yaml), "groups.yaml");
}

const std::string kModel =
    "model:\n  vocab_size: 32\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n  max_seq_len: 16\n";

const ParamGroupPlan& group(const std::vector<ParamGroupPlan>& groups, const std::string& name) {
  for (const auto& g : groups)
    if (g.name == name) return g;
  throw Error("no group " + name);
}

bool has(const ParamGroupPlan& g, const std::string& name) {
  return std::find(g.names.begin(), g.names.end(), name) != g.names.end();
}

// The groups of the model a config text builds.
std::vector<ParamGroupPlan> groups_of(const std::string& yaml) {
  auto cfg = parse(yaml);
  return plan_param_groups(*build_model(cfg.model), cfg.optimizer);
}

std::vector<std::string> names_of(const std::vector<ParamGroupPlan>& groups) {
  std::vector<std::string> n;
  for (const auto& g : groups) n.push_back(g.name);
  return n;
}

TEST(OptimizerGroups, AttentionModelKeepsTheTwoDefaultGroups) {
  auto cfg = parse(kModel + "  mixer: {type: attention}\n");
  auto model = build_model(cfg.model);
  const auto groups = plan_param_groups(*model, cfg.optimizer);
  EXPECT_EQ(names_of(groups), (std::vector<std::string>{"decay", "no_decay"}));
  EXPECT_TRUE(has(groups[0], "h.0.mlp.fc1.weight"));
  EXPECT_TRUE(has(groups[1], "h.0.mlp.fc1.bias"));
  EXPECT_TRUE(has(groups[1], "wte.weight"));
  EXPECT_DOUBLE_EQ(groups[0].weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(groups[1].weight_decay, 0.0);
  int64_t total = 0;
  for (const auto& g : groups) total += g.numel;
  EXPECT_EQ(total, parameter_count(*model));
}

TEST(OptimizerGroups, H3SsmParametersAsSafariTagsThem) {
  auto cfg = parse(kModel + "  mixer: {type: h3, d_state: 4}\noptimizer: {lr: 3.0e-3}\n");
  auto model = build_model(cfg.model);
  const auto groups = plan_param_groups(*model, cfg.optimizer);
  const auto& ssm = group(groups, "ssm");
  for (const char* p :
       {"ssm_k_kernel.B", "kernel.log_dt", "kernel.B", "kernel.inv_A_real", "kernel.A_imag"})
    EXPECT_TRUE(has(ssm, std::string("h.1.mixer.") + p)) << p;
  EXPECT_EQ(ssm.names.size(), 10u);  // five per layer
  EXPECT_DOUBLE_EQ(ssm.lr, 1e-3) << "min(1e-3, optimizer.lr) as safari's h3.yaml";
  EXPECT_DOUBLE_EQ(ssm.weight_decay, 0.0);
  // C and the skips stay with the stack's defaults.
  EXPECT_TRUE(has(group(groups, "decay"), "h.0.mixer.kernel.C"));
  EXPECT_TRUE(has(group(groups, "no_decay"), "h.0.mixer.D"));

  const auto low = groups_of(kModel + "  mixer: {type: h3, d_state: 4}\noptimizer: {lr: 2.0e-4}\n");
  EXPECT_DOUBLE_EQ(group(low, "ssm").lr, 2e-4);
  const auto own = groups_of(kModel + "  mixer: {type: h3, d_state: 4, ssm_lr: 5.0e-3}\n");
  EXPECT_DOUBLE_EQ(group(own, "ssm").lr, 5e-3);
}

TEST(OptimizerGroups, S4DSsmParametersAsSafariTagsThem) {
  const auto groups =
      groups_of(kModel + "  mixer: {type: s4d, d_state: 4}\noptimizer: {lr: 3.0e-3}\n");
  const auto& ssm = group(groups, "ssm");
  for (const char* p : {"kernel.log_dt", "kernel.log_w_real", "kernel.w_imag"})
    EXPECT_TRUE(has(ssm, std::string("h.0.mixer.") + p)) << p;
  EXPECT_EQ(ssm.names.size(), 6u);  // three per layer
  EXPECT_DOUBLE_EQ(ssm.lr, 1e-3) << "min(1e-3, optimizer.lr) as safari's s4d.yaml";
  EXPECT_DOUBLE_EQ(ssm.weight_decay, 0.0);
  // C, the skip D and the output linear stay with the stack's defaults.
  EXPECT_TRUE(has(group(groups, "decay"), "h.0.mixer.kernel.C"));
  EXPECT_TRUE(has(group(groups, "decay"), "h.0.mixer.D"));
  EXPECT_TRUE(has(group(groups, "no_decay"), "h.0.mixer.output_linear.bias"));

  const std::string own_yaml = kModel + "  mixer: {type: s4d, d_state: 4, ssm_lr: 5.0e-3}\n";
  const auto own = groups_of(own_yaml);
  EXPECT_DOUBLE_EQ(group(own, "ssm").lr, 5e-3);
  const auto described = describe_param_groups(own, parse(own_yaml).optimizer);
  EXPECT_NE(described.find("ssm: lr 0.005 (mixer option ssm_lr)"), std::string::npos) << described;
  // With H3 in the same stack and the same settings, one "ssm" group holds both.
  const auto hybrid = groups_of(kModel +
                                "  mixer: {type: s4d, d_state: 4}\n"
                                "  layers: [{at: [1], mixer: {type: h3, d_state: 4}}]\n");
  EXPECT_EQ(group(hybrid, "ssm").names.size(), 3u + 5u);
}

TEST(OptimizerGroups, HyenaFilterAndPositionalFeatures) {
  auto cfg = parse(kModel + "  mixer: {type: hyena, filter_order: 8, filter_lr: 6.0e-4}\n");
  auto model = build_model(cfg.model);
  const auto groups = plan_param_groups(*model, cfg.optimizer);
  EXPECT_EQ(names_of(groups), (std::vector<std::string>{"decay", "no_decay", "pos_emb", "filter"}));
  const auto& filter = group(groups, "filter");
  EXPECT_DOUBLE_EQ(filter.lr, 6e-4);
  EXPECT_DOUBLE_EQ(filter.weight_decay, 0.0);
  EXPECT_TRUE(has(filter, "h.0.mixer.filter_fn.implicit_filter.0.weight"));
  EXPECT_TRUE(has(filter, "h.0.mixer.filter_fn.implicit_filter.1.freq")) << "Sin frequencies";
  const auto& pos = group(groups, "pos_emb");
  EXPECT_EQ(pos.names, (std::vector<std::string>{"h.0.mixer.filter_fn.pos_emb.z",
                                                 "h.1.mixer.filter_fn.pos_emb.z"}));
  EXPECT_DOUBLE_EQ(pos.lr, 1e-5);
  // The filter's skip (bias) and the projections are the stack's.
  EXPECT_TRUE(has(group(groups, "no_decay"), "h.0.mixer.filter_fn.bias"));
  EXPECT_TRUE(has(group(groups, "decay"), "h.0.mixer.in_proj.weight"));
}

TEST(OptimizerGroups, M2LeavesTheReverseFilterUntaggedAsM2Does) {
  auto cfg = parse(
      "model:\n  stack: bert\n  vocab_size: 32\n  d_model: 16\n  n_layer: 1\n  max_seq_len: 16\n"
      "  mixer: {type: m2, filter_order: 8, residual_long_conv: true}\n");
  auto model = build_model(cfg.model);
  const auto groups = plan_param_groups(*model, cfg.optimizer);
  const auto& filter = group(groups, "filter");
  EXPECT_DOUBLE_EQ(filter.weight_decay, 0.1);
  EXPECT_TRUE(has(filter, "h.0.mixer.filter_fn.implicit_filter.0.weight"));
  EXPECT_TRUE(has(filter, "h.0.mixer.filter_fn2.implicit_filter.0.weight"));
  for (const auto& n : filter.names) EXPECT_EQ(n.find("implicit_filter_rev"), std::string::npos);
  EXPECT_EQ(group(groups, "pos_emb").names.size(), 2u) << "filter_fn and filter_fn2";
}

TEST(OptimizerGroups, ConfigOverridesAndLayersThatDiffer) {
  auto cfg = parse(kModel +
                   "  mixer: {type: hyena, filter_order: 8}\n"
                   "  layers: [{at: [1], mixer: {type: hyena, filter_order: 8, filter_lr: 0.01}}]\n"
                   "optimizer:\n  groups:\n    pos_emb: {lr: 2.0e-3, weight_decay: 0.5}\n"
                   "    no_decay: {weight_decay: 0.01}\n");
  auto model = build_model(cfg.model);
  const auto groups = plan_param_groups(*model, cfg.optimizer);
  EXPECT_EQ(names_of(groups),
            (std::vector<std::string>{"decay", "no_decay", "pos_emb", "filter", "filter.2"}));
  EXPECT_DOUBLE_EQ(group(groups, "filter").lr, 1e-3);
  EXPECT_DOUBLE_EQ(group(groups, "filter.2").lr, 0.01);
  EXPECT_DOUBLE_EQ(group(groups, "pos_emb").lr, 2e-3);
  EXPECT_DOUBLE_EQ(group(groups, "pos_emb").weight_decay, 0.5);
  EXPECT_DOUBLE_EQ(group(groups, "no_decay").weight_decay, 0.01);
  EXPECT_EQ(YAML::Dump(cfg.resolved["optimizer"]["groups"]["pos_emb"]["lr"]), "0.002");

  // The schedule scales each group's own peak.
  auto opt = make_optimizer(groups, cfg.optimizer);
  ASSERT_EQ(opt->param_groups().size(), groups.size());
  set_lr(*opt, groups, 0.5);
  for (size_t i = 0; i < groups.size(); ++i)
    EXPECT_DOUBLE_EQ(opt->param_groups()[i].options().get_lr(), groups[i].lr * 0.5);
  const auto described = describe_param_groups(groups, cfg.optimizer);
  EXPECT_NE(described.find("pos_emb: lr 0.002 (optimizer.groups.pos_emb.lr), weight_decay 0.5 "
                           "(optimizer.groups.pos_emb.weight_decay), 2 tensors"),
            std::string::npos)
      << described;
  EXPECT_NE(described.find("filter.2: lr 0.01 (mixer option filter_lr), weight_decay 0 (block "
                           "default)"),
            std::string::npos)
      << described;
  EXPECT_NE(described.find("filter: lr 0.001 (block default)"), std::string::npos) << described;
}

TEST(OptimizerGroups, UnknownGroupAndBadFormAreOneLineErrors) {
  auto cfg = parse(kModel + "  mixer: {type: attention}\noptimizer:\n  groups: {ssm: {lr: 0.1}}\n");
  auto model = build_model(cfg.model);
  try {
    plan_param_groups(*model, cfg.optimizer, cfg.source);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("groups.yaml optimizer.groups.ssm: no such parameter "
                                         "group in this model (its groups: decay, no_decay)"),
              std::string::npos)
        << e.what();
  }
  auto error_of = [](const std::string& yaml) -> std::string {
    try {
      parse(yaml);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of(kModel + "optimizer: {groups: [1, 2]}\n").find("optimizer.groups"),
            std::string::npos);
  EXPECT_NE(error_of(kModel + "optimizer: {groups: {filter: {lr: -1}}}\n").find("lr"),
            std::string::npos);
  EXPECT_NE(error_of(kModel + "optimizer: {groups: {filter: {momentum: 1}}}\n").find("momentum"),
            std::string::npos);
}

}  // namespace
}  // namespace herd
