// Training that matches the original code step for step. Each safari fixture of
// shared/reference-models holds train_parity.json: eight float64 steps of safari's own train.py
// from model.ckpt (its parameter groups, torch's AdamW, Lightning's clip, a constant lr) on one
// token stream. herd imports model.ckpt, trains --init-from it with the file's settings and
// nothing else overridden, and every step's loss must equal the file's to 1e-8 relative. The
// per-layer lr and weight decay and the decay rule come from the import alone: leave them out
// and step 2 is already ~2e-2 off.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "data/text/shard.h"
#include "fixtures.h"
#include "test_train_parity_util.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(HERD_SOURCE_DIR) + "/../shared/reference-models/" + name;
}

// The imported config plus the file's run settings, trained in float64.
TrainResult train_like_the_file(const std::string& name, const std::string& dir) {
  const YAML::Node parity = YAML::LoadFile(fixture(name) + "/train_parity.json");
  std::string out;
  EXPECT_EQ(
      test::run_herd(str("import --from safari ", fixture(name), "/model.ckpt --out ", dir, "/ck"),
                     &out),
      0)
      << out;
  // One llm.c shard holding exactly batch_size * seq_len + 1 tokens: one batch of every row.
  std::vector<int> tokens;
  for (const auto& t : parity["tokens"]) tokens.push_back(t.as<int>());
  const std::string shards = dir + "/shards";
  fs::create_directories(shards);
  data::write_shard(shards + "/parity_train_000000.bin", data::TokenDtype::u16, tokens);
  data::write_shard(shards + "/parity_val_000000.bin", data::TokenDtype::u16, tokens);

  // The imported config (model and recipe) with the file's run settings over it.
  YAML::Node run = YAML::LoadFile(dir + "/ck/config.yaml");
  const YAML::Node settings = YAML::Load(
      str("data: {dir: ", shards, ", seq_len: ", parity["seq_len"].as<int64_t>(), "}\n",
          "schedule: {warmup_steps: 0, decay: constant}\n", "train: {steps: ",
          parity["steps"].as<int64_t>(), ", batch_size: ", parity["batch_size"].as<int64_t>(),
          ", micro_batch_size: 0, precision: fp64, device: cpu, eval_every: 0, eval_batches: 1, "
          "sample_tokens: 0, threads: 1}\n",
          "checkpoint: {every: 0}\ntask: {init_from: ", dir, "/ck}\n"));
  return train(parse_config(test::with_parity_settings(run, settings, parity), name + " parity"),
               {dir + "/run", "", 0, true});
}

void expect_parity(const std::string& name) {
  const YAML::Node parity = YAML::LoadFile(fixture(name) + "/train_parity.json");
  const auto r = train_like_the_file(name, test::temp_dir("parity_" + name));
  ASSERT_EQ(r.losses.size(), parity["losses"].size());
  double worst = 0;
  for (size_t i = 0; i < r.losses.size(); ++i) {
    const double want = parity["losses"][i].as<double>();
    worst = std::max(worst, std::abs(r.losses[i] - want) / std::abs(want));
    EXPECT_LE(std::abs(r.losses[i] - want), 1e-8 * std::abs(want))
        << name << " step " << i + 1 << ": herd " << r.losses[i] << ", safari " << want;
  }
  std::cout << name << ": largest relative loss difference over the steps " << worst << "\n";
}

TEST(TrainParity, SafariHyenaEightStepsFromTheImport) {
  expect_parity("safari_hyena_lm");
}

TEST(TrainParity, SafariH3HybridEightStepsFromTheImport) {
  expect_parity("safari_h3_hybrid_lm");
}

TEST(TrainParity, ImportedGroupsAreSafarisGroups) {
  // The groups safari built (lr, weight decay, parameter count), as the file lists them.
  for (const std::string name : {"safari_hyena_lm", "safari_h3_hybrid_lm"}) {
    const std::string dir = test::temp_dir("parity_groups_" + name);
    std::string out;
    ASSERT_EQ(
        test::run_herd(
            str("import --from safari ", fixture(name), "/model.ckpt --out ", dir, "/ck"), &out),
        0)
        << out;
    ASSERT_EQ(
        test::run_herd(str("config check ", dir, "/ck/config.yaml --set optimizer.lr=0.002"), &out),
        0)
        << out;
    const YAML::Node parity = YAML::LoadFile(fixture(name) + "/train_parity.json");
    // safari merges tags with equal settings into one group; herd keeps filter and pos_emb apart
    // (same lr and decay): compare the parameters per (lr, weight decay).
    std::map<std::pair<double, double>, int64_t> want, got;
    for (const auto& g : parity["groups_lr_wd_params"])
      want[{g[0].as<double>(), g[1].as<double>()}] += g[2].as<int64_t>();
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      double lr = 0, wd = 0;
      long long tensors = 0, params = 0;
      const auto colon = line.find(": lr ");
      if (line.rfind("#   ", 0) != 0 || colon == std::string::npos) continue;
      const auto wd_at = line.find("weight_decay ");
      const auto tensors_at = line.find("), ", line.find(" (", wd_at));
      ASSERT_NE(wd_at, std::string::npos) << line;
      lr = std::stod(line.substr(colon + 5));
      wd = std::stod(line.substr(wd_at + 13));
      ASSERT_EQ(std::sscanf(line.c_str() + tensors_at + 3, "%lld tensors, %lld", &tensors, &params),
                2)
          << line;
      got[{lr, wd}] += params;
    }
    EXPECT_EQ(got, want) << out;
  }
}

}  // namespace
}  // namespace herd
