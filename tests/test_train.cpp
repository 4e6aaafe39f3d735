// End-to-end training on real text: falling loss, exact resume, checkpoint safety, CLI flow.
#include <gtest/gtest.h>

#include <filesystem>

#include "ckpt/checkpoint.h"
#include "fixtures.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;

// A tiny GPT on the fortunes fixture; extra YAML lines are appended per test.
Config tiny_config(const std::string& dir, const std::string& extra = "", int64_t steps = 12) {
  const std::string path = dir + "/tiny.yaml";
  test::write_text(path,
                   str("model:\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n",
                       "data:\n  dir: ", test::fortunes_dataset(), "\n",
                       "optimizer:\n  lr: 3.0e-3\nschedule:\n  warmup_steps: 3\n",
                       "train:\n  steps: ", steps, "\n  batch_size: 8\n  micro_batch_size: 4\n",
                       "  eval_batches: 2\n  sample_tokens: 0\n  threads: 1\n", extra));
  return load_config(path);
}

TEST(Train, LossFallsOnRealText) {
  const std::string dir = test::temp_dir("train");
  Config cfg = tiny_config(dir, "", 150);
  auto r = train(cfg, {dir + "/run", "", 0, true});
  ASSERT_EQ(r.losses.size(), 150u);
  double last = 0;
  for (size_t i = 140; i < 150; ++i) last += r.losses[i] / 10;
  EXPECT_LT(last, r.losses[0] - 1.2) << "first " << r.losses[0] << " last-10 mean " << last;
  EXPECT_LT(r.val_loss, std::log(512.0) - 1.2);  // clearly better than uniform over the vocabulary
  EXPECT_TRUE(fs::exists(dir + "/run/metrics.jsonl"));
  EXPECT_TRUE(fs::exists(dir + "/run/config.yaml"));
}

TEST(Train, ExactResumeIsBitIdentical) {
  const std::string dir = test::temp_dir("resume");
  Config cfg = tiny_config(dir, "", 12);
  auto straight = train(cfg, {dir + "/straight", "", 0, true});
  auto first = train(cfg, {dir + "/split", "", 6, true});
  ASSERT_EQ(first.steps, 6);
  auto second = train(cfg, {dir + "/split", "auto", 0, true});
  ASSERT_EQ(second.start_step, 6);
  ASSERT_EQ(straight.losses.size(), 12u);
  ASSERT_EQ(first.losses.size() + second.losses.size(), 12u);
  for (size_t i = 0; i < 12; ++i) {
    const double split = i < 6 ? first.losses[i] : second.losses[i - 6];
    EXPECT_EQ(split, straight.losses[i]) << "step " << i + 1;  // bitwise
  }
  auto a = test::weights_of(straight.last_checkpoint), b = test::weights_of(second.last_checkpoint);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  EXPECT_EQ(straight.val_loss, second.val_loss);
}

TEST(Train, ResumeRefusesADifferentModel) {
  const std::string dir = test::temp_dir("mismatch");
  Config cfg = tiny_config(dir, "", 2);
  train(cfg, {dir + "/run", "", 0, true});
  Config other = tiny_config(dir, "", 4);
  other = load_config(dir + "/tiny.yaml", {"model.n_layer=3"});
  try {
    train(other, {dir + "/run", "auto", 0, true});
    FAIL() << "resumed a 2-layer checkpoint into a 3-layer model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.n_layer differs from the checkpoint's"),
              std::string::npos)
        << e.what();
  }
}

TEST(Train, CheckpointsAreAtomicAndPruned) {
  const std::string dir = test::temp_dir("ckpt");
  Config cfg = tiny_config(dir, "checkpoint:\n  every: 2\n  keep_last: 2\n", 8);
  auto r = train(cfg, {dir + "/run", "", 0, true});
  const std::string ck = dir + "/run/checkpoints";
  auto complete = ckpt::list_complete(ck);
  ASSERT_EQ(complete.size(), 2u);
  EXPECT_EQ(fs::path(complete[0]).filename(), "step_00000006");
  EXPECT_EQ(fs::path(complete[1]).filename(), "step_00000008");
  for (const auto& e : fs::directory_iterator(ck))
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  EXPECT_EQ(*ckpt::find_latest(ck), complete[1]);
  // A torn write (directory without its files) and a stale pointer are never picked.
  fs::create_directories(ck + "/step_00000009");
  test::write_text(ck + "/step_00000009/state.yaml", "format: herd-checkpoint\n");
  test::write_text(ck + "/latest", "step_00000042\n");
  EXPECT_EQ(*ckpt::find_latest(ck), complete[1]);
  // A corrupt weights file is a clear error, not a crash.
  auto bad = ckpt::open(complete[0]);
  test::write_text(complete[0] + "/model.pt", "not a zip");
  Gpt model(with_dataset(cfg, data::load_manifest(cfg.data.dir)).model);
  EXPECT_THROW(ckpt::load_model(bad, *model), Error);
}

TEST(Train, CliTrainEvalGenerate) {
  const std::string dir = test::temp_dir("cli");
  tiny_config(dir, "", 4);
  std::string out;
  ASSERT_EQ(test::run_herd(
                "train " + dir + "/tiny.yaml --run-dir " + dir + "/run --set train.steps=3", &out),
            0)
      << out;
  EXPECT_NE(out.find("step 3/3 | loss"), std::string::npos) << out;
  const std::string ck = dir + "/run/checkpoints/step_00000003";
  ASSERT_EQ(test::run_herd("eval " + dir + "/tiny.yaml --checkpoint " + ck, &out), 0) << out;
  EXPECT_NE(out.find("val_loss "), std::string::npos) << out;
  ASSERT_EQ(test::run_herd(
                "generate --checkpoint " + dir + "/run/checkpoints --max-tokens 5 --seed 3", &out),
            0)
      << out;
  std::string again;
  ASSERT_EQ(
      test::run_herd("generate --checkpoint " + dir + "/run/checkpoints --max-tokens 5 --seed 3",
                     &again),
      0);
  EXPECT_EQ(out, again);  // seeded sampling is reproducible
  EXPECT_NE(test::run_herd("generate --checkpoint " + dir + "/nowhere", &out), 0);
  EXPECT_NE(out.find("nowhere"), std::string::npos) << out;
  EXPECT_NE(test::run_herd(
                "train " + dir + "/tiny.yaml --set model.n_head=5 --run-dir " + dir + "/bad", &out),
            0);
  EXPECT_NE(out.find("n_head"), std::string::npos) << out;
}

}  // namespace
}  // namespace herd
