// Config validation: each error class names file:line, the key path and the expected form.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/node.h"
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

}  // namespace
}  // namespace herd
