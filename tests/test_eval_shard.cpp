// Evaluation shared out across ranks, simulated in one process: every task (lm, mlm, image,
// classify) evaluated as rank 1 of 2 and rank 0 of 2, with rank 1's partial sums handed to
// rank 0's reduction, reports one process's figures; each rank ran only its own batches.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/image/prepare_images.h"
#include "data/text/manifest.h"
#include "fixtures.h"
#include "test_image_util.h"
#include "train/eval_shard.h"
#include "train/task.h"

namespace herd {
namespace {

TEST(EvalShard, BatchCountAndOwnership) {
  EXPECT_EQ(eval_batch_count(10, 4, 0), 3);  // 4 + 4 + 2
  EXPECT_EQ(eval_batch_count(10, 4, 2), 2);
  EXPECT_EQ(eval_batch_count(8, 4, 5), 2);
  EXPECT_EQ(eval_batch_count(0, 4, 0), 0);
  EXPECT_EQ((EvalShard{1, 3, {}}.mine(8)), (std::vector<int64_t>{1, 4, 7}));
  EXPECT_EQ((EvalShard{0, 1, {}}.mine(3)), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE((EvalShard{2, 3, {}}.mine(2)).empty());
}

TEST(EvalShard, SumsAreReadOnceThenReducedOverRanks) {
  EvalSums sums(3);
  sums.add(0, torch::tensor(1.5f));
  sums.add(0, torch::tensor(2.0, torch::kFloat64));
  sums.add(1, torch::tensor(int64_t{4}));
  sums.add(2, 3.0);
  sums.add(2, 1.0);
  EXPECT_EQ(sums.total({}), (std::vector<double>{3.5, 4, 4}));
  const EvalShard two{0, 2, [](std::vector<double> v) {
                        for (auto& x : v) x += 10;  // the other rank's sums
                        return v;
                      }};
  EXPECT_EQ(sums.total(two), (std::vector<double>{13.5, 14, 14}));
}

struct Partials {
  std::vector<double> rank0, rank1;
};

// Evaluates `task` as one process and as both ranks of two; checks the figures agree and
// returns each rank's partial sums.
Partials expect_shards_add_up(Task& task, int64_t max_batches) {
  const EvalResult whole = task.evaluate(max_batches, {});
  Partials p;
  task.evaluate(max_batches, {1, 2, [&](std::vector<double> v) {
                                p.rank1 = v;
                                return v;
                              }});
  const EvalResult two = task.evaluate(max_batches, {0, 2, [&](std::vector<double> v) {
                                                       p.rank0 = v;
                                                       for (size_t i = 0; i < v.size(); ++i)
                                                         v[i] += p.rank1[i];
                                                       return v;
                                                     }});
  EXPECT_EQ(p.rank0.size(), p.rank1.size());
  EXPECT_EQ(two.size(), whole.size());
  for (size_t i = 0; i < whole.size() && i < two.size(); ++i) {
    EXPECT_EQ(two[i].first, whole[i].first);
    EXPECT_NEAR(two[i].second, whole[i].second, 1e-12 * std::max(1.0, std::abs(whole[i].second)))
        << whole[i].first;
  }
  return p;
}

std::unique_ptr<Task> task_of(const std::string& yaml) {
  const Config cfg = parse_config(YAML::Load(yaml), "shard.yaml");
  return make_task(cfg, Runtime::from(cfg.train));
}

const char* kTrain = "train:\n  batch_size: 2\n  device: cpu\n  threads: 1\n";

TEST(EvalShard, LanguageModelSplitsBatchesAcrossRanks) {
  auto task = task_of(str("model:\n  d_model: 16\n  n_layer: 1\n  n_head: 2\n  max_seq_len: 8\n",
                          "data:\n  dir: ", test::fortunes_dataset(), "\n", kTrain));
  const Partials p = expect_shards_add_up(*task, 3);
  EXPECT_EQ(p.rank0.back(), 4) << "rank 0 runs batches 0 and 2 (2 rows each)";
  EXPECT_EQ(p.rank1.back(), 2) << "rank 1 runs batch 1";
}

TEST(EvalShard, MaskedLmSplitsBatchesAcrossRanks) {
  auto task = task_of(
      str("model:\n  stack: bert\n  d_model: 16\n  n_layer: 1\n  n_head: 2\n  max_seq_len: 16\n",
          "data:\n  dir: ", test::fortunes_dataset(), "\n", kTrain));
  const Partials p = expect_shards_add_up(*task, 3);
  ASSERT_EQ(p.rank0.size(), 3u);
  EXPECT_GT(p.rank1[2], 0);
  EXPECT_GT(p.rank0[2], p.rank1[2]) << "rank 0 masks two batches' tokens, rank 1 one's";
}

TEST(EvalShard, ImageClassifierSplitsBatchesAcrossRanks) {
  using data::testing_util::write_idx;
  const std::string dir = test::temp_dir("shard_images");
  std::vector<uint8_t> pixels, labels;
  for (int i = 0; i < 12 * 64; ++i) pixels.push_back(static_cast<uint8_t>((i * 37) % 251));
  for (int i = 0; i < 12; ++i) labels.push_back(static_cast<uint8_t>(i % 3));
  write_idx(dir + "/train.gz", {12, 8, 8}, pixels);
  write_idx(dir + "/train_labels.gz", {12}, labels);
  write_idx(dir + "/test.gz", {7, 8, 8},
            std::vector<uint8_t>(pixels.begin() + 64, pixels.begin() + 8 * 64));
  write_idx(dir + "/test_labels.gz", {7}, std::vector<uint8_t>(labels.begin(), labels.begin() + 7));
  data::PrepareImagesOptions opt;
  opt.idx_train_images = dir + "/train.gz";
  opt.idx_train_labels = dir + "/train_labels.gz";
  opt.idx_test_images = dir + "/test.gz";
  opt.idx_test_labels = dir + "/test_labels.gz";
  opt.out_dir = dir + "/data";
  data::prepare_images(opt);
  auto task = task_of(str("model:\n  stack: vit\n  image_size: 8\n  patch_size: 4\n  channels: 1\n",
                          "  num_classes: 3\n  d_model: 16\n  n_layer: 1\n  n_head: 2\n",
                          "data:\n  dir: ", dir, "/data\n", kTrain));
  const Partials p = expect_shards_add_up(*task, 0);  // 7 images: batches of 2, 2, 2, 1
  EXPECT_EQ(p.rank0.back(), 4) << "rank 0 runs batches 0 and 2";
  EXPECT_EQ(p.rank1.back(), 3) << "rank 1 runs batches 1 and 3 (the short one)";
}

TEST(EvalShard, ClassifierSplitsBatchesAcrossRanks) {
  const std::string dir = test::temp_dir("shard_classify");
  std::string lines;
  for (int i = 0; i < 9; ++i)
    lines += str("{\"text\": \"line number ", i, " of the set\", \"label\": \"",
                 i % 2 ? "odd" : "even", "\"}\n");
  test::write_text(dir + "/train.jsonl", lines);
  test::write_text(dir + "/val.jsonl", lines);
  const std::string tok = data::load_manifest(test::fortunes_dataset()).tokenizer_path;
  auto task = task_of(str("model:\n  stack: bert\n  d_model: 16\n  n_layer: 1\n  n_head: 2\n",
                          "  max_seq_len: 16\n", "data:\n  tokenizer: ", tok, "\n",
                          "task:\n  type: classify\n  train_file: ", dir, "/train.jsonl\n",
                          "  val_file: ", dir, "/val.jsonl\n", kTrain));
  const Partials p = expect_shards_add_up(*task, 0);  // 9 examples: 5 batches
  EXPECT_EQ(p.rank0.back(), 5) << "batches 0, 2, 4 (2 + 2 + 1 rows)";
  EXPECT_EQ(p.rank1.back(), 4) << "batches 1, 3";
}

}  // namespace
}  // namespace herd
