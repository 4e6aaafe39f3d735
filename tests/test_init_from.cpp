// herd train --init-from / task.init_from for every stack but classify (which takes the
// encoder itself): the checkpoint's weights, a fresh optimizer, step 0; mismatches are one-line
// errors naming the tensor. Also: dropout keys train end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "ckpt/checkpoint.h"
#include "data/text/shard.h"
#include "fixtures.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;

Config tiny(const std::string& dir, const std::string& name, const std::string& extra,
            int64_t d_model = 32, const std::string& model_extra = "") {
  const std::string path = dir + "/" + name + ".yaml";
  test::write_text(
      path, str("model:\n  d_model: ", d_model, "\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n",
                model_extra, "data:\n  dir: ", test::fortunes_dataset(), "\n",
                "train:\n  batch_size: 4\n",
                "  eval_batches: 1\n  sample_tokens: 0\n  threads: 1\n", extra));
  return load_config(path);
}

TEST(InitFrom, WeightsOnlyFreshOptimizerAndStep) {
  const std::string dir = test::temp_dir("init_from");
  auto base = train(tiny(dir, "base", "  steps: 4\noptimizer: {lr: 3.0e-3}\n"),
                    {dir + "/base", "", 0, true});
  ASSERT_FALSE(base.last_checkpoint.empty());
  // lr 0: the run must end with exactly the weights it started from.
  auto cfg = tiny(
      dir, "tune",
      str("  steps: 3\noptimizer: {lr: 0.0}\ntask: {init_from: ", base.last_checkpoint, "}\n"));
  auto tuned = train(cfg, {dir + "/tune", "", 0, true});
  EXPECT_EQ(tuned.start_step, 0);
  EXPECT_EQ(tuned.steps, 3);
  auto ck = ckpt::open(tuned.last_checkpoint);
  EXPECT_EQ(ck.state.step, 3) << "a fresh schedule, not the base run's step 4 + 3";
  const auto a = test::weights_of(base.last_checkpoint),
             b = test::weights_of(tuned.last_checkpoint);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  // The same run without init_from starts elsewhere.
  auto fresh = train(tiny(dir, "fresh", "  steps: 3\noptimizer: {lr: 0.0}\n"),
                     {dir + "/fresh", "", 0, true});
  EXPECT_FALSE(
      torch::equal(test::weights_of(fresh.last_checkpoint).at("wte.weight"), a.at("wte.weight")));
}

TEST(InitFrom, ShapeMismatchNamesTheTensor) {
  const std::string dir = test::temp_dir("init_from_shape");
  auto base = train(tiny(dir, "base", "  steps: 1\n"), {dir + "/base", "", 0, true});
  auto cfg =
      tiny(dir, "other", str("  steps: 1\ntask: {init_from: ", base.last_checkpoint, "}\n"), 16);
  try {
    train(cfg, {dir + "/other", "", 0, true});
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.pt: tensor \"wte.weight\" has shape [512, 32], the model expects "
                     "[512, 16]"),
              std::string::npos)
        << m;
  }
}

TEST(InitFrom, CliFlagAndBadPath) {
  const std::string dir = test::temp_dir("init_from_cli");
  auto base = train(tiny(dir, "base", "  steps: 2\n"), {dir + "/base", "", 0, true});
  const std::string cfg = dir + "/base.yaml";
  std::string out;
  EXPECT_EQ(test::run_herd(str("train ", cfg, " --set train.steps=1 --run-dir ", dir,
                               "/cli --init-from ", base.last_checkpoint),
                           &out),
            0)
      << out;
  EXPECT_NE(out.find("weights from "), std::string::npos) << out;
  EXPECT_NE(out.find("optimizer and schedule start at step 0"), std::string::npos) << out;
  std::string bad;
  EXPECT_NE(test::run_herd(
                str("train ", cfg, " --run-dir ", dir, "/bad --init-from ", dir, "/missing"), &bad),
            0);
  EXPECT_NE(bad.find("--init-from " + dir + "/missing: expected a checkpoint directory"),
            std::string::npos)
      << bad;
  EXPECT_FALSE(fs::exists(dir + "/bad"));
}

TEST(InitFrom, ImportedReferenceWeightsStartATrainingRun) {
  // safari's tiny Hyena LM (shared/reference-models), imported, then trained on an llm.c shard
  // folder of its vocabulary: with lr 0 the run ends on exactly the imported weights.
  const std::string dir = test::temp_dir("init_from_import");
  const std::string ref =
      std::string(HERD_SOURCE_DIR) + "/../shared/reference-models/safari_hyena_lm";
  std::string out;
  ASSERT_EQ(
      test::run_herd(str("import --from safari ", ref, "/model.ckpt --out ", dir, "/ck"), &out), 0)
      << out;
  const std::string shards = dir + "/shards";
  fs::create_directories(shards);
  std::vector<int> ids(4000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>((i * 7 + i / 13) % 61);
  data::write_shard(shards + "/ref_train_000000.bin", data::TokenDtype::u16, ids);
  data::write_shard(shards + "/ref_val_000000.bin", data::TokenDtype::u16, ids);
  YAML::Node root = YAML::LoadFile(dir + "/ck/config.yaml");
  YAML::Node run;
  run["model"] = root["model"];
  run["data"]["dir"] = shards;
  run["data"]["seq_len"] = 16;
  run["optimizer"]["lr"] = 0.0;
  run["train"]["steps"] = 2;
  run["train"]["batch_size"] = 2;
  run["train"]["eval_batches"] = 1;
  run["train"]["sample_tokens"] = 0;
  run["train"]["threads"] = 1;
  run["task"]["init_from"] = dir + "/ck";
  auto cfg = parse_config(run, "imported.yaml");
  auto r = train(cfg, {dir + "/run", "", 0, true});
  EXPECT_EQ(r.steps, 2);
  EXPECT_TRUE(std::isfinite(r.losses.front()));
  const auto a = test::weights_of(dir + "/ck"), b = test::weights_of(r.last_checkpoint);
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  }
}

TEST(InitFrom, DropoutTrainsEndToEnd) {
  // Every dropout on: the loss still falls over a short run, and the resolved config keeps them.
  const std::string dir = test::temp_dir("dropout_train");
  auto cfg = tiny(dir, "drop", "  steps: 30\noptimizer: {lr: 3.0e-3}\n", 32,
                  "  embd_dropout: 0.1\n  resid_dropout: 0.1\n  mlp_dropout: 0.1\n"
                  "  mixer: {type: attention, dropout: 0.1}\n");
  EXPECT_EQ(cfg.resolved["model"]["resid_dropout"].as<double>(), 0.1);
  auto r = train(cfg, {dir + "/drop", "", 0, true});
  ASSERT_EQ(r.losses.size(), 30u);
  EXPECT_LT(r.losses.back(), r.losses.front() - 0.5);
  EXPECT_TRUE(std::isfinite(r.val_loss));
}

}  // namespace
}  // namespace herd
