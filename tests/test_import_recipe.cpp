// herd import carries the source run's training recipe into the imported config.yaml: the
// mixers' own lr and weight decay, the decay rule, the optimizer and the clip, each with its
// origin in optimizer.sources; what the checkpoint does not say comes from the paper config,
// and the import says so. A value of the wrong type is a one-line error naming its key.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "config/config.h"
#include "core/error.h"
#include "fixtures.h"
#include "models/stack.h"
#include "train/optimizer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(HERD_SOURCE_DIR) + "/../shared/reference-models/" + name;
}

// Imports and returns the written config.yaml; `out` gets herd's output.
YAML::Node import(const std::string& args, const std::string& dir, std::string* out) {
  EXPECT_EQ(test::run_herd(str("import ", args, " --out ", dir, "/ck"), out), 0) << *out;
  return YAML::LoadFile(dir + "/ck/config.yaml");
}

TEST(ImportRecipe, SafariHyenaLayerSettingsAndPaperOptimizer) {
  const std::string dir = test::temp_dir("recipe_hyena");
  std::string out;
  auto c = import("--from safari " + fixture("safari_hyena_lm") + "/model.ckpt", dir, &out);
  const auto mixer = c["model"]["mixer"];
  EXPECT_DOUBLE_EQ(mixer["filter_lr"].as<double>(), 6e-4);
  EXPECT_DOUBLE_EQ(mixer["lr_pos_emb"].as<double>(), 6e-4);
  EXPECT_DOUBLE_EQ(mixer["filter_wd"].as<double>(), 0.0);
  EXPECT_EQ(c["optimizer"]["no_decay"].size(), 0u);
  EXPECT_EQ(c["optimizer"]["name"].as<std::string>(), "adamw");
  const auto sources = c["optimizer"]["sources"];
  EXPECT_NE(sources["model.mixer.filter_lr"].as<std::string>().find(
                "model.ckpt hyper_parameters model.layer.lr"),
            std::string::npos);
  // The fixture's hyper-parameters hold no optimizer: the paper config's, and it says so.
  EXPECT_NE(sources["optimizer.lr"].as<std::string>().find("paper config configs/hyena-153m.yaml"),
            std::string::npos);
  EXPECT_NE(out.find("recipe: model.mixer.filter_lr = 0.0006  ("), std::string::npos) << out;
  EXPECT_NE(out.find("recipe: train.grad_clip = 1  (paper config"), std::string::npos) << out;
  // config check names the origin of each group's values.
  ASSERT_EQ(test::run_herd(str("config check ", dir, "/ck/config.yaml"), &out), 0) << out;
  EXPECT_NE(out.find("filter: lr 0.0006 (mixer option filter_lr; import: "), std::string::npos)
      << out;
}

TEST(ImportRecipe, PaperValuesAreThoseOfTheConfigs) {
  // What an import takes from "the paper config" is what configs/*.yaml say.
  struct Case {
    std::string args, config;
  };
  const std::vector<Case> cases{
      {"--from safari " + fixture("safari_hyena_lm") + "/model.ckpt", "hyena-153m.yaml"},
      {"--from safari " + fixture("safari_h3_hybrid_lm") + "/model.ckpt", "h3-125m.yaml"},
      {"--from m2 " + fixture("m2_bert_mlm") + "/pytorch_model.bin", "m2-bert-base-80m.yaml"}};
  for (const auto& k : cases) {
    const std::string dir = test::temp_dir("recipe_paper");
    std::string out;
    const auto imported = parse_config(import(k.args, dir, &out), "imported");
    const auto paper = load_config(std::string(HERD_SOURCE_DIR) + "/configs/" + k.config);
    EXPECT_EQ(imported.optimizer.name, paper.optimizer.name) << k.config;
    EXPECT_DOUBLE_EQ(imported.optimizer.lr, paper.optimizer.lr) << k.config;
    EXPECT_DOUBLE_EQ(imported.optimizer.weight_decay, paper.optimizer.weight_decay) << k.config;
    EXPECT_DOUBLE_EQ(imported.optimizer.beta1, paper.optimizer.beta1) << k.config;
    EXPECT_DOUBLE_EQ(imported.optimizer.beta2, paper.optimizer.beta2) << k.config;
    EXPECT_DOUBLE_EQ(imported.optimizer.eps, paper.optimizer.eps) << k.config;
    EXPECT_DOUBLE_EQ(imported.train.grad_clip, paper.train.grad_clip) << k.config;
    EXPECT_EQ(imported.optimizer.no_decay, paper.optimizer.no_decay) << k.config;
    EXPECT_EQ(imported.optimizer.block_groups, paper.optimizer.block_groups) << k.config;
  }
}

TEST(ImportRecipe, M2ConfigJsonFilterSettingsAndDecoupledAdamW) {
  const std::string dir = test::temp_dir("recipe_m2");
  std::string out;
  auto c = import("--from m2 " + fixture("m2_bert_mlm") + "/pytorch_model.bin", dir, &out);
  EXPECT_EQ(c["optimizer"]["name"].as<std::string>(), "decoupled_adamw");
  // m2 trains one group: the filters' tags are lost in its deepcopy of the layers.
  EXPECT_FALSE(c["optimizer"]["block_groups"].as<bool>());
  EXPECT_NE(c["optimizer"]["sources"]["optimizer.block_groups"].as<std::string>().find("deepcopy"),
            std::string::npos);
  EXPECT_DOUBLE_EQ(c["model"]["mixer"]["filter_lr"].as<double>(), 1e-3);
  EXPECT_DOUBLE_EQ(c["model"]["mixer"]["filter_wd"].as<double>(), 0.1);
  EXPECT_DOUBLE_EQ(c["model"]["mixer"]["lr_pos_emb"].as<double>(), 1e-5);
  EXPECT_NE(c["optimizer"]["sources"]["model.mixer.filter_lr"].as<std::string>().find(
                "config.json long_conv_kernel_learning_rate"),
            std::string::npos);
  EXPECT_EQ(c["optimizer"]["no_decay"].size(), 0u);
}

// The fixture's model config without its layer lr, as --reference-config.
std::string bare_model_config(const std::string& dir, const std::string& extra_top) {
  YAML::Node meta = YAML::LoadFile(fixture("safari_hyena_lm") + "/meta.json");
  YAML::Node model = meta["config"];
  model["layer"].remove("lr");
  model["layer"].remove("lr_pos_emb");
  const std::string path = dir + "/ref.yaml";
  YAML::Node root;
  if (extra_top.empty()) {
    root = model;
  } else {
    root = YAML::Load(extra_top);
    root["model"] = model;
  }
  test::write_text(path, YAML::Dump(root));
  return path;
}

TEST(ImportRecipe, WithoutHyperParametersItStatesTheDefaults) {
  const std::string dir = test::temp_dir("recipe_defaults");
  std::string out;
  auto c = import(str("--from safari ", fixture("safari_hyena_lm"), "/state_dict.pt ",
                      "--reference-config ", bare_model_config(dir, "")),
                  dir, &out);
  EXPECT_DOUBLE_EQ(c["model"]["mixer"]["filter_lr"].as<double>(), 1e-3);
  EXPECT_DOUBLE_EQ(c["model"]["mixer"]["lr_pos_emb"].as<double>(), 1e-5);
  EXPECT_NE(out.find("recipe: model.mixer.filter_lr = 0.001  (safari HyenaOperator default"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("recipe: optimizer.lr = 0.0006  (paper config"), std::string::npos) << out;
  EXPECT_NE(out.find("recipe: optimizer.no_decay = []  (safari's Pile configs"), std::string::npos)
      << out;
}

TEST(ImportRecipe, HyperParametersGroupingAndOptimizerAreTaken) {
  const std::string dir = test::temp_dir("recipe_grouping");
  std::string out;
  const std::string ref =
      bare_model_config(dir,
                        "train: {optimizer_param_grouping: {bias_weight_decay: true}}\n"
                        "optimizer: {lr: 3.0e-4, weight_decay: 0.05, betas: [0.8, 0.9]}\n"
                        "trainer: {gradient_clip_val: 0.5}\n");
  auto c = parse_config(import(str("--from safari ", fixture("safari_hyena_lm"), "/state_dict.pt ",
                                   "--reference-config ", ref),
                               dir, &out),
                        "imported");
  EXPECT_EQ(c.optimizer.no_decay, (std::vector<std::string>{"embedding", "norm"}));
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 3e-4);
  EXPECT_DOUBLE_EQ(c.optimizer.weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(c.optimizer.beta1, 0.8);
  EXPECT_DOUBLE_EQ(c.optimizer.eps, 1e-8);  // not in the file: the paper's
  EXPECT_DOUBLE_EQ(c.train.grad_clip, 0.5);
  EXPECT_NE(c.optimizer.sources.at("train.grad_clip").find("trainer.gradient_clip_val"),
            std::string::npos);
}

TEST(ImportRecipe, WrongTypeIsAOneLineErrorNamingTheKey) {
  const std::string dir = test::temp_dir("recipe_bad");
  YAML::Node meta = YAML::LoadFile(fixture("safari_hyena_lm") + "/meta.json");
  YAML::Node root;
  root["model"] = meta["config"];
  root["model"]["layer"]["lr"] = "fast";
  const std::string ref = dir + "/bad.yaml";
  test::write_text(ref, YAML::Dump(root));
  std::string out;
  EXPECT_NE(test::run_herd(str("import --from safari ", fixture("safari_hyena_lm"),
                               "/state_dict.pt --reference-config ", ref, " --out ", dir, "/ck"),
                           &out),
            0);
  EXPECT_NE(out.find(ref + " model.layer.lr: expected a number, got fast"), std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(dir + "/ck"));
}

TEST(ImportRecipe, NoDecayKindsSplitTheUntaggedParameters) {
  auto parse = [](const std::string& no_decay) {
    return parse_config(YAML::Load("model: {d_model: 16, n_layer: 1, n_head: 2, max_seq_len: 8, "
                                   "vocab_size: 32}\noptimizer: {no_decay: " +
                                   no_decay + "}\n"),
                        "nd.yaml");
  };
  EXPECT_EQ(parse("[]").optimizer.no_decay.size(), 0u);
  EXPECT_EQ(parse("[bias, norm]").optimizer.no_decay, (std::vector<std::string>{"bias", "norm"}));
  // Which parameters each rule keeps out of decay.
  auto undecayed = [&](const std::string& no_decay) {
    const auto cfg = parse(no_decay);
    auto model = build_model(cfg.model);
    std::set<std::string> names;
    for (const auto& g : plan_param_groups(*model, cfg.optimizer))
      if (g.name == "no_decay") names.insert(g.names.begin(), g.names.end());
    return names;
  };
  EXPECT_TRUE(undecayed("[]").empty());
  const auto bias_norm = undecayed("[bias, norm]");
  EXPECT_TRUE(bias_norm.count("h.0.ln_1.weight") && bias_norm.count("h.0.ln_1.bias") &&
              bias_norm.count("h.0.mlp.fc1.bias"));
  EXPECT_FALSE(bias_norm.count("wte.weight") || bias_norm.count("h.0.mlp.fc1.weight"));
  const auto embedding = undecayed("[embedding]");
  EXPECT_TRUE(embedding.count("wte.weight") && embedding.count("wpe.weight"));
  EXPECT_FALSE(embedding.count("h.0.ln_1.weight"));
  const auto by_default = undecayed("[vector, embedding]");
  EXPECT_TRUE(by_default.count("h.0.ln_1.weight") && by_default.count("wte.weight"));
  EXPECT_FALSE(by_default.count("h.0.mlp.fc1.weight"));
  try {
    parse("[biases]");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "optimizer.no_decay: expected a list of vector|bias|norm|embedding"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace herd
