// Config validation: each error class names file:line, the key path and the expected form.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.h"
#include "config/node.h"
#include "config/schema.h"
#include "fixtures.h"
#include "models/gpt.h"

namespace herd {
namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  const std::string path = test::temp_dir("cfg") + "/cfg.yaml";
  test::write_text(path, yaml);
  try {
    load_config(path, overrides);
  } catch (const Error& e) {
    std::string msg = e.what();
    return msg.substr(msg.find("cfg.yaml"));  // drop the temp directory
  }
  return "no error";
}

TEST(Config, UnknownKeyNamesLineAndPath) {
  EXPECT_EQ(error_of("model:\n  d_model: 64\n  n_layr: 3\n")
                .rfind("cfg.yaml:3 model.n_layr: unknown key", 0),
            0u)
      << error_of("model:\n  d_model: 64\n  n_layr: 3\n");
  EXPECT_NE(error_of("modle:\n  d_model: 64\n").find("cfg.yaml:1 modle: unknown key"),
            std::string::npos);
}

TEST(Config, WrongTypeNamesExpectedForm) {
  EXPECT_EQ(error_of("model:\n  n_layer: twelve\n"),
            "cfg.yaml:2 model.n_layer: expected positive integer, got \"twelve\"");
  EXPECT_EQ(error_of("train:\n  grad_clip: [1]\n"),
            "cfg.yaml:2 train.grad_clip: expected a number, got a list");
  EXPECT_EQ(error_of("model:\n  tie_embeddings: maybe\n"),
            "cfg.yaml:2 model.tie_embeddings: expected true or false, got \"maybe\"");
}

TEST(Config, OutOfRangeRejected) {
  EXPECT_EQ(error_of("model:\n  n_layer: 0\n"),
            "cfg.yaml:2 model.n_layer: expected positive integer, got 0");
  EXPECT_NE(
      error_of("optimizer:\n  lr: -1\n").find("cfg.yaml:2 optimizer.lr: expected a number in [0"),
      std::string::npos);
  EXPECT_NE(error_of("optimizer:\n  betas: [0.9, 1.5]\n").find("optimizer.betas"),
            std::string::npos);
}

TEST(Config, BadChoiceListsChoices) {
  EXPECT_EQ(error_of("train:\n  device: tpu\n"),
            "cfg.yaml:2 train.device: expected one of auto|cpu|cuda, got \"tpu\"");
}

TEST(Config, YamlSyntaxErrorHasLine) {
  EXPECT_NE(error_of("model:\n  d_model: [1, 2\n").find("cfg.yaml:"), std::string::npos);
  EXPECT_NE(error_of("model:\n  d_model: [1, 2\n").find("YAML syntax error"), std::string::npos);
}

TEST(Config, CrossFieldChecks) {
  EXPECT_NE(error_of("train:\n  batch_size: 8\n  micro_batch_size: 3\n")
                .find("train.micro_batch_size: must divide"),
            std::string::npos);
  EXPECT_NE(error_of("model:\n  max_seq_len: 16\ndata:\n  seq_len: 32\n")
                .find("exceeds model.max_seq_len"),
            std::string::npos);
}

TEST(Config, OverridesAreValidatedLikeTheFile) {
  const std::string path = test::temp_dir("cfg") + "/cfg.yaml";
  test::write_text(path, "model:\n  n_layer: 2\n");
  EXPECT_EQ(load_config(path, {"model.n_layer=5", "train.steps=7"}).model.n_layer, 5);
  EXPECT_NE(error_of("model:\n  n_layer: 2\n", {"model.n_layer=abc"})
                .find("model.n_layer: expected positive integer"),
            std::string::npos);
  EXPECT_THROW(load_config(path, {"model.n_layer"}), Error);  // no '='
  EXPECT_NE(error_of("{}\n", {"model.bogus=1"}).find("model.bogus: unknown key"),
            std::string::npos);
}

TEST(Config, HybridLayerPlan) {
  const std::string path = test::temp_dir("cfg") + "/cfg.yaml";
  test::write_text(path,
                   "model:\n  n_layer: 4\n  mixer: {type: attention}\n  layers:\n"
                   "    - {at: [1, 3], mixer: {type: attention, causal: true}}\n");
  Config c = load_config(path);
  ASSERT_EQ(c.model.layers.size(), 4u);
  EXPECT_EQ(c.model.layers[1].options["causal"].as<bool>(), true);
  EXPECT_EQ(c.model.layers[0].options.size(), 0u);  // layer 0 keeps the default mixer
  EXPECT_NE(error_of("model:\n  n_layer: 2\n  layers:\n    - {at: [2], mixer: {type: attention}}\n")
                .find("model.layers[0].at: layer index 2 out of range [0, 2)"),
            std::string::npos);
}

TEST(Config, MixerErrorsComeFromTheBlock) {
  const std::string dir = test::temp_dir("cfg");
  test::write_text(dir + "/a.yaml", "model:\n  vocab_size: 32\n  mixer:\n    type: transformerz\n");
  Config a = load_config(dir + "/a.yaml");
  try {
    Gpt m(a.model);
    FAIL() << "unknown mixer accepted";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("a.yaml:4 model.mixer.type: unknown mixer \"transformerz\""),
        std::string::npos)
        << e.what();
  }
  test::write_text(dir + "/b.yaml",
                   "model:\n  vocab_size: 32\n  mixer:\n    type: attention\n    n_heads: 2\n");
  Config b = load_config(dir + "/b.yaml");
  try {
    Gpt m(b.model);
    FAIL() << "unknown mixer option accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.mixer.n_heads: unknown key"), std::string::npos)
        << e.what();
  }
}

TEST(Config, ResolvedConfigRoundTrips) {
  const std::string path = test::temp_dir("cfg") + "/cfg.yaml";
  test::write_text(
      path,
      "model:\n  n_layer: 3\n  layers:\n    - {at: [0], mixer: {type: attention, n_head: 2}}\n");
  Config c = load_config(path);
  Config again = parse_config(YAML::Load(cfg::to_yaml(c.resolved)), "resolved.yaml");
  EXPECT_EQ(cfg::to_yaml(again.resolved), cfg::to_yaml(c.resolved));
  EXPECT_EQ(again.model.layers[0].options["n_head"].as<int>(), 2);
}

TEST(Config, CliReportsOneLineAndNonZeroExit) {
  const std::string path = test::temp_dir("cfg") + "/cfg.yaml";
  test::write_text(path, "model:\n  n_layer: twelve\n");
  std::string out;
  EXPECT_NE(test::run_herd("config check " + path, &out), 0);
  EXPECT_NE(out.find("model.n_layer: expected positive integer, got \"twelve\""), std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(Config, CheckPrintsPlanParametersAndFlops) {
  const std::string path = test::temp_dir("cfg") + "/cfg.yaml";
  test::write_text(
      path,
      "model:\n  vocab_size: 100\n  d_model: 16\n  n_layer: 2\n  n_head: 2\n  max_seq_len: 8\n");
  std::string out;
  ASSERT_EQ(test::run_herd("config check " + path, &out), 0) << out;
  // Embeddings 100*16 + 8*16; per layer: 2 LN (64) + attention (16*48+48+16*16+16) + MLP
  // (16*64+64+64*16+16); final LN 32.
  const int64_t per_layer = 64 + (16 * 48 + 48 + 256 + 16) + (1024 + 64 + 1024 + 16);
  const int64_t expected = 1600 + 128 + 2 * per_layer + 32;
  EXPECT_NE(out.find("# parameters: " + std::to_string(expected)), std::string::npos) << out;
  EXPECT_NE(out.find("#   layer 1: attention"), std::string::npos) << out;
  EXPECT_NE(out.find("# training FLOPs per token"), std::string::npos) << out;
}

TEST(ConfigSchema, UnknownKeyListsTheValidOnes) {
  const std::string msg = error_of("model:\n  d_model: 64\n  n_layr: 3\n");
  EXPECT_NE(msg.find("did you mean n_layer?"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model accepts: "), std::string::npos) << msg;
  for (const auto& k : cfg::config_keys()) {
    if (k.section == "model") {
      EXPECT_NE(msg.find(k.name), std::string::npos) << k.name;
    }
  }
  const std::string top = error_of("modle:\n  d_model: 64\n");
  EXPECT_NE(top.find("did you mean model?"), std::string::npos) << top;
}

TEST(ConfigSchema, MaskRateRangeIsTheMaskersRange) {
  // data::mask_rows accepts rates in (0, 1): the config must refuse both ends.
  EXPECT_EQ(error_of("task:\n  mask_rate: 1\n"),
            "cfg.yaml:2 task.mask_rate: expected a number in (0, 1), got 1");
  EXPECT_EQ(error_of("task:\n  mask_rate: 0\n"),
            "cfg.yaml:2 task.mask_rate: expected a number in (0, 1), got 0");
  EXPECT_EQ(error_of("task:\n  mask_rate: 0.15\n"), "no error");
  EXPECT_EQ(error_of("data:\n  augment: {min_scale: 0}\n"),
            "cfg.yaml:2 data.augment.min_scale: expected a number in (0, 1], got 0");
}

// Every scalar key of the table, set in a file to a non-default value inside its range, is
// parsed into the struct and written back by the resolved dump.
TEST(ConfigSchema, EveryScalarKeyParsesAndDumps) {
  int checked = 0;
  for (const auto& k : cfg::config_keys()) {
    if (std::holds_alternative<std::monostate>(k.field)) continue;
    if (k.choices.size() == 1) continue;  // nothing else to set
    std::string value;
    const std::string def = k.default_text();
    if (!k.choices.empty()) {
      value = k.choices.back() == def ? k.choices.front() : k.choices.back();
    } else if (k.type_name() == "bool") {
      value = def == "true" ? "false" : "true";
    } else if (k.type_name() == "string") {
      value = "x";
    } else {
      const bool integer = k.type_name() == "integer";
      std::vector<double> candidates;
      if (k.lo && k.hi && !integer) candidates = {(k.lo->value + k.hi->value) / 2};
      if (k.hi && !k.hi->open) candidates.push_back(k.hi->value);
      const double lo = k.lo ? k.lo->value : 0;
      candidates.insert(candidates.end(), {lo + 2, lo + 3});
      for (double v : candidates)
        if (value.empty() && str(v) != def) value = str(v);
    }
    if (k.path() == "model.mlp_nblocks") value = "2";
    // The context each key applies in: its stack and condition.
    std::string yaml = "model:\n  vocab_size: 0\n  stack: " +
                       std::string(k.stacks & cfg::kGpt    ? "gpt"
                                   : k.stacks & cfg::kBert ? "bert"
                                                           : "vit") +
                       "\n";
    std::vector<std::string> sets;
    if (k.stacks == cfg::kVit || k.section == "data.augment")
      yaml = "model:\n  stack: vit\n  num_classes: 10\n  image_size: 28\n";
    if (k.path() == "model.mlp_nblocks") sets.push_back("model.mlp=m2_glu");
    if (k.section == "data.synthetic" && k.name != "task") {  // under a task it applies to
      const bool mqar =
          k.name == "num_kv_pairs" || k.name == "power_a" || k.name == "random_non_queries";
      sets.push_back(str("data.synthetic.task=", mqar                  ? "mqar"
                                                 : k.name == "key_len" ? "passkey"
                                                                       : "associative_recall"));
      if (mqar) sets.push_back("data.synthetic.vocab_size=64");
      if (k.name == "key_len") value = "3";
    }
    if (k.path() == "model.mixer_residual") sets.push_back("model.stack=bert");
    if (k.path() == "task.mask_rate") sets.push_back("task.type=mlm");
    if (k.section == "task" && k.name.find("_f") != std::string::npos) {
      sets.push_back("task.type=classify");
      if (k.name != "train_file") sets.push_back("task.train_file=t.jsonl");
    }
    if (k.path() == "model.stack" || k.path() == "model.vocab_size" || k.path() == "task.type" ||
        k.path() == "model.image_size" || k.path() == "model.patch_size" ||
        k.path() == "model.max_seq_len" || k.path() == "model.norm" || k.path() == "model.pool" ||
        k.path() == "model.num_classes" || k.path() == "data.seq_len" ||
        k.path() == "train.micro_batch_size" || k.path() == "data.augment.min_scale" ||
        k.path() == "model.d_model")
      continue;  // cross-checked keys: covered by their own tests
    sets.push_back(k.path() + "=" + value);
    const std::string path = test::temp_dir("cfg") + "/cfg.yaml";
    test::write_text(path, yaml);
    Config c;
    try {
      c = load_config(path, sets);
    } catch (const Error& e) {
      ADD_FAILURE() << k.path() << "=" << value << ": " << e.what();
      continue;
    }
    YAML::Node section = c.resolved[k.section.substr(0, k.section.find('.'))];
    if (k.section.find('.') != std::string::npos)
      section = section[k.section.substr(k.section.find('.') + 1)];
    ASSERT_TRUE(section[k.name]) << k.path() << " missing from the resolved config";
    EXPECT_NE(YAML::Dump(section[k.name]), k.default_text()) << k.path();
    ++checked;
  }
  EXPECT_GT(checked, 40);
}

TEST(ConfigSchema, DocsAreGeneratedFromTheTable) {
  std::ifstream in(std::string(HERD_SOURCE_DIR) + "/docs/config.md");
  std::stringstream docs;
  docs << in.rdbuf();
  EXPECT_EQ(docs.str(), cfg::config_docs_markdown())
      << "docs/config.md is stale: run `herd config docs --out docs/config.md`";
  for (const auto& k : cfg::config_keys())
    EXPECT_NE(docs.str().find("| `" + k.name + "` |"), std::string::npos) << k.path();
}

}  // namespace
}  // namespace herd
