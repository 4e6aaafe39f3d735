// Every registered causal mixer learns real text inside the GPT stack, through the same
// train() path as a user run; a hybrid stack does too, and `herd config check` shows its plan.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>

#include "blocks/registry.h"
#include "fixtures.h"
#include "train/trainer.h"

namespace herd {
namespace {

// The stack options each block's paper uses, at the tiny debug size. Long-convolution blocks
// run without position embeddings, as in safari's ConvLMHeadModel.
const std::map<std::string, std::string>& block_models() {
  static const std::map<std::string, std::string> models = {
      {"attention", "  mlp: gelu_tanh\n  mixer: {type: attention}\n"},
      {"primer", "  mlp: squared_relu\n  mixer: {type: primer, dconv_width: 3}\n"},
      {"hyena",
       "  positional: none\n  mlp: gelu_tanh\n  mlp_ratio: 2\n"
       "  mixer: {type: hyena, filter_order: 16, emb_dim: 5, w: 14}\n"},
      {"h3", "  positional: none\n  mlp: gelu_tanh\n  mixer: {type: h3, d_state: 16}\n"},
      {"s4d", "  positional: none\n  mlp: gelu_tanh\n  mixer: {type: s4d, d_state: 16}\n"},
      {"m2",
       "  positional: none\n  mlp: m2_glu\n  mlp_nblocks: 4\n"
       "  mixer: {type: m2, filter_order: 16, emb_dim: 5}\n"},
  };
  return models;
}

constexpr int64_t kSteps = 120;

Config block_config(const std::string& dir, const std::string& model_lines) {
  const std::string path = dir + "/block.yaml";
  test::write_text(
      path,
      str("model:\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n", model_lines,
          "data:\n  dir: ", test::fortunes_dataset(), "\n",
          "optimizer:\n  lr: 1.0e-2\nschedule:\n  warmup_steps: 5\n", "train:\n  steps: ", kSteps,
          "\n  batch_size: 8\n", "  eval_batches: 1\n  sample_tokens: 0\n  threads: 1\n"));
  return load_config(path);
}

// Trains and checks the loss falls at least 1 nat: from ~ln(512) = 6.2 at the start, a
// model that learned nothing beyond the unigram distribution would not get there.
void expect_learns(const std::string& tag, const std::string& model_lines) {
  const std::string dir = test::temp_dir("block-" + tag);
  const Config cfg = block_config(dir, model_lines);
  const auto start = std::chrono::steady_clock::now();
  const auto r = train(cfg, {dir + "/run", "", 0, true});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.losses.size(), static_cast<size_t>(kSteps)) << tag;
  double last = 0;
  for (int64_t i = kSteps - 10; i < kSteps; ++i) last += r.losses[i] / 10;
  EXPECT_LT(last, r.losses[0] - 1.0)
      << tag << ": first " << r.losses[0] << ", last-10 mean " << last;
  EXPECT_TRUE(std::isfinite(r.val_loss)) << tag;
  std::printf("[ train  ] %-16s loss %.3f -> %.3f (last-10 mean), val %.3f, %.1f s\n", tag.c_str(),
              r.losses[0], last, r.val_loss, seconds);
}

TEST(BlockTraining, EveryCausalMixerIsCovered) {
  for (const auto& name : mixer_names())
    EXPECT_TRUE(block_models().count(name)) << "mixer " << name << " has no training test";
}

class BlockTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(BlockTraining, LossFallsOnRealText) {
  expect_learns(GetParam(), block_models().at(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Mixers, BlockTraining,
                         ::testing::Values("attention", "primer", "hyena", "h3", "m2", "s4d"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(BlockTraining, HybridH3WithAttentionLearns) {
  expect_learns("h3+attention",
                "  positional: none\n  mlp: gelu_tanh\n  mixer: {type: h3, d_state: 16}\n"
                "  layers:\n    - at: [1]\n      mixer: {type: attention}\n");
}

TEST(BlockTraining, ConfigCheckPrintsHybridPlan) {
  std::string out;
  ASSERT_EQ(test::run_herd("config check " + std::string(HERD_SOURCE_DIR) + "/configs/h3-125m.yaml",
                           &out),
            0)
      << out;
  for (int i = 0; i < 12; ++i) {
    const std::string type = (i == 1 || i == 8) ? "attention" : "h3";
    EXPECT_NE(out.find(str("#   layer ", i, ": ", type, "\n")), std::string::npos)
        << "layer " << i << " should be " << type << "\n"
        << out;
  }
  // The resolved config lists the overridden layers and the exact size.
  EXPECT_NE(out.find("type: attention"), std::string::npos) << out;
  EXPECT_NE(out.find("# parameters: 126134016 (126.13M)"), std::string::npos) << out;
}

}  // namespace
}  // namespace herd
