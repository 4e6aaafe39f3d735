// data.mix through the user-facing train() path: a GPT on a blend of two prepared datasets
// (the fortunes fixture and a second one made with its tokenizer) stops, resumes from the
// checkpoint's mixture state and reproduces the uninterrupted run bit for bit; an MLM run
// over the same blend trains too.
#include <gtest/gtest.h>

#include "core/error.h"
#include "fixtures.h"
#include "train/trainer.h"

namespace herd {
namespace {

// A second dataset over other fortune files, tokenized with the fixture's tokenizer.
std::string second_dataset(const std::string& dir) {
  const std::string out = dir + "/second";
  std::string log;
  const int rc = test::run_herd(
      str("prepare text --input /usr/share/games/fortunes/science /usr/share/games/fortunes/people"
          " --doc-delimiter % --val-fraction 0.05 --tokenizer ",
          test::fortunes_dataset(), "/tokenizer.model --out ", out),
      &log);
  EXPECT_EQ(rc, 0) << log;
  return out;
}

Config mix_config(const std::string& dir, const std::string& second, const std::string& extra) {
  test::write_text(
      dir + "/mix.yaml",
      str("model:\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n", extra,
          "data:\n  mix:\n    - {dir: ", test::fortunes_dataset(),
          ", weight: 3}\n    - {dir: ", second, ", weight: 1}\n", "optimizer:\n  lr: 3.0e-3\n",
          "train:\n  steps: 10\n  batch_size: 8\n  eval_batches: 2\n"
          "  sample_tokens: 0\n  threads: 1\n"));
  return load_config(dir + "/mix.yaml");
}

TEST(TrainMix, BlendResumesExactly) {
  const std::string dir = test::temp_dir("train-mix");
  const Config cfg = mix_config(dir, second_dataset(dir), "");
  auto straight = train(cfg, {dir + "/straight", "", 0, true});
  auto first = train(cfg, {dir + "/split", "", 4, true});
  auto second = train(cfg, {dir + "/split", "auto", 0, true});
  ASSERT_EQ(straight.losses.size(), 10u);
  ASSERT_EQ(first.losses.size() + second.losses.size(), 10u);
  for (size_t i = 0; i < 10; ++i)
    EXPECT_EQ(i < 4 ? first.losses[i] : second.losses[i - 4], straight.losses[i]) << i;
  EXPECT_TRUE(std::isfinite(straight.val_loss));  // the first source's validation split
}

TEST(TrainMix, MaskedLmOverABlend) {
  const std::string dir = test::temp_dir("train-mix-mlm");
  const Config cfg = mix_config(dir, second_dataset(dir), "  stack: bert\n");
  auto r = train(cfg, {dir + "/run", "", 0, true});
  EXPECT_EQ(r.step_metrics.at("mlm_acc").size(), 10u);
  EXPECT_TRUE(std::isfinite(eval_value(r.val, "mlm_acc")));
}

}  // namespace
}  // namespace herd
