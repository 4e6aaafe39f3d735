// Context parallelism (train.context_parallel) across real processes (Gloo on the CPU,
// float64): every block's output and gradients and whole GPT/BERT hybrids' loss and gradients
// on 2 and 3 shards against the unsplit run (herd dist-selftest context), training runs and a
// resume from 2 shards onto one process against one process's run, their evaluation on the
// shards (lm, mlm, synthetic) against one process's, data x context parallel with ZeRO-1 on 4
// processes (slow), and the configurations refused at start.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "fixtures.h"
#include "test_dist_util.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using test::expect_same_weights;
using test::metric_losses;
using test::read_values;

const std::vector<std::string> kBlockCases{"attention_causal_h4",
                                           "attention_causal_h3",
                                           "attention_bidir_h4",
                                           "attention_bidir_h3",
                                           "primer_causal",
                                           "primer_bidir",
                                           "hyena_order2",
                                           "hyena_order3",
                                           "m2_causal",
                                           "m2_bidir",
                                           "h3_head_dim1",
                                           "h3_head_dim2",
                                           "s4d"};
const std::vector<std::string> kModelCases{"gpt_hybrid", "bert_hybrid"};

void check_selftest(int nproc) {
  const std::string dir = test::temp_dir(str("context_selftest", nproc));
  std::string out;
  ASSERT_EQ(
      test::run_herd(str("dist-selftest context --out ", dir, " --nproc-per-node ", nproc), &out),
      0)
      << out;
  for (int r = 0; r < nproc; ++r) {
    auto v = read_values(dir + "/rank" + std::to_string(r) + ".txt");
    ASSERT_EQ(v.at("world"), nproc) << r;
    auto expect_close = [&](const std::string& name, const char* what) {
      const double scale = v.at(name + ".scale");
      EXPECT_GT(scale, 1e-3) << name;  // something was compared
      EXPECT_LT(v.at(name + "." + what), 1e-11 * std::max(1.0, scale))
          << "rank " << r << " " << name << " " << what;
    };
    for (const auto& name : kBlockCases)
      for (const char* what : {"output", "input_grad", "param_grad"}) expect_close(name, what);
    for (const auto& name : kModelCases)
      for (const char* what : {"output", "param_grad"}) expect_close(name, what);
  }
}

// Attention and Primer with heads split (n_head 4 on 2 shards, 3 on 3) and with keys and
// values gathered (the other way round); every long-convolution block; GPT and BERT hybrids
// with unevenly scored tokens over the shards.
TEST(DistContext, EveryBlockAndModelOnTwoShardsEqualsUnsplit) {
  check_selftest(2);
}
TEST(DistContext, EveryBlockAndModelOnThreeShardsEqualsUnsplit) {
  check_selftest(3);
}

// A tiny float64 hybrid on the fortunes fixture, 8 rows of 16 tokens in micro-batches of 2:
// GPT (hyena, attention, h3 of d_state h3_state) or BERT masked-LM (m2, attention, primer).
std::string write_hybrid(const std::string& dir, int64_t steps, int64_t h3_state = 4,
                         bool bert = false) {
  const std::string path = dir + (bert ? "/bert.yaml" : "/gpt.yaml");
  const std::string layers =
      bert ? str("  stack: bert\n  mixer: {type: m2, filter_order: 8}\n  layers:\n",
                 "    - at: [1]\n      mixer: {type: attention}\n",
                 "    - at: [2]\n      mixer: {type: primer}\n")
           : str("  mixer: {type: hyena, filter_order: 8}\n  layers:\n",
                 "    - at: [1]\n      mixer: {type: attention}\n",
                 "    - at: [2]\n      mixer: {type: h3, d_state: ", h3_state, "}\n");
  test::write_text(
      path, str("model:\n  d_model: 32\n  n_layer: 3\n  n_head: 4\n  max_seq_len: 16\n", layers,
                "data:\n  dir: ", test::fortunes_dataset(), "\n",
                "optimizer:\n  lr: 3.0e-3\nschedule:\n  warmup_steps: 2\n",
                "train:\n  steps: ", steps, "\n  batch_size: 8\n  micro_batch_size: 2\n",
                "  precision: fp64\n  device: cpu\n  eval_batches: 2\n  sample_tokens: 0\n",
                "  threads: 1\n  dist_timeout_s: 20\n  bucket_cap_mb: 0.01\n"));
  return path;
}

void expect_losses_match(const std::map<int64_t, double>& got, const std::vector<double>& want,
                         const std::string& what) {
  for (int64_t s = 1; s <= static_cast<int64_t>(want.size()); ++s) {
    ASSERT_TRUE(got.count(s)) << what << ": no loss for step " << s;
    // metrics.jsonl holds 9 significant digits (%.9g): up to 5e-9 of the value.
    EXPECT_NEAR(got.at(s), want[s - 1], 1e-8 * want[s - 1]) << what << ", step " << s;
  }
}

// The val_* figures a run wrote last equal one process's evaluation of the same weights (to
// the metrics file's 9 digits): a split counting a figure's terms unevenly is off by a factor.
void expect_eval_matches(const std::string& run_dir, const EvalResult& want,
                         const std::string& what) {
  const auto got = test::last_eval(run_dir);
  ASSERT_GE(want.size(), 2u) << what;
  EXPECT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, v] : want) {
    ASSERT_TRUE(got.count("val_" + name)) << what << ": no val_" << name;
    EXPECT_NEAR(got.at("val_" + name), v, 1e-8 * std::max(1.0, std::abs(v)))
        << what << ", val_" << name;
  }
}

std::string cp_args(const std::string& cfg, const std::string& run, int nproc, int parts,
                    const std::string& more = "") {
  return str("train ", cfg, " --run-dir ", run, " --nproc-per-node ", nproc,
             " --set train.context_parallel=", parts, more);
}

// Two shards (with activation checkpointing) train like one process, and a run stopped on two
// shards resumes on one process to the uninterrupted run's weights.
TEST(DistContext, TwoShardsTrainLikeOneProcessAndResumeOnOne) {
  const std::string dir = test::temp_dir("context_train");
  const std::string cfg = write_hybrid(dir, 6);
  auto one = train(load_config(cfg), {dir + "/one", "", 0, true});
  std::string out;
  // Layers recomputed in backward (their exchanges too) change nothing.
  ASSERT_EQ(test::run_herd(cp_args(cfg, dir + "/cp2", 2, 2,
                                   " --set logging.level=debug"
                                   " --set train.activation_checkpointing=layer"),
                           &out),
            0)
      << out;
  expect_losses_match(metric_losses(dir + "/cp2"), one.losses, "context parallel 2");
  expect_same_weights(one.last_checkpoint, dir + "/cp2/checkpoints/step_00000006");
  // Both ranks evaluated both batches, each on its half of the positions.
  expect_eval_matches(dir + "/cp2", one.val, "evaluation on 2 shards");

  ASSERT_EQ(test::run_herd(cp_args(cfg, dir + "/resume", 2, 2, " --stop-after 3"), &out), 0) << out;
  auto resumed = train(load_config(cfg), {dir + "/resume", "auto", 0, true});
  ASSERT_EQ(resumed.start_step, 3);
  expect_losses_match(metric_losses(dir + "/resume"), one.losses, "context parallel 2 -> 1");
  expect_same_weights(one.last_checkpoint, dir + "/resume/checkpoints/step_00000006");
}

// Masked-LM: shards score unequal numbers of masked tokens; the loss is the mean over all.
TEST(DistContext, BertMaskedLmOnTwoShardsTrainsLikeOneProcess) {
  const std::string dir = test::temp_dir("context_bert");
  const std::string cfg = write_hybrid(dir, 4, 4, /*bert=*/true);
  auto one = train(load_config(cfg), {dir + "/one", "", 0, true});
  std::string out;
  ASSERT_EQ(test::run_herd(cp_args(cfg, dir + "/cp2", 2, 2), &out), 0) << out;
  expect_losses_match(metric_losses(dir + "/cp2"), one.losses, "bert, context parallel 2");
  expect_same_weights(one.last_checkpoint, dir + "/cp2/checkpoints/step_00000004");
  expect_eval_matches(dir + "/cp2", one.val, "bert evaluation on 2 shards");  // loss, mlm_acc
}

// 4 processes: 2 data-parallel ranks x 2 shards, with ZeRO-1, like one process.
TEST(DistContextSlow, DataTimesContextParallelOnFourProcesses) {
  const std::string dir = test::temp_dir("context_dp");
  const std::string cfg = write_hybrid(dir, 4);
  auto one = train(load_config(cfg), {dir + "/one", "", 0, true});
  std::string out;
  ASSERT_EQ(test::run_herd(cp_args(cfg, dir + "/dpcp", 4, 2, " --set train.zero=1"), &out), 0)
      << out;
  expect_losses_match(metric_losses(dir + "/dpcp"), one.losses, "2 x 2 ranks, ZeRO-1");
  expect_same_weights(one.last_checkpoint, dir + "/dpcp/checkpoints/step_00000004");
  // Batch i on data rank i % 2, on both its shards.
  expect_eval_matches(dir + "/dpcp", one.val, "evaluation on 2 x 2 ranks");
}

// A tiny float64 hyena + attention GPT on passkey (micro-batches of 4 rows, 48 test examples):
// the key at depth 0 or 1 of 24-token rows and recalled at their end, so that every answer
// lies in the last shard, and scored per whole example and per depth.
std::string write_passkey(const std::string& dir) {
  const std::string path = dir + "/passkey.yaml";
  test::write_text(
      path, str("model:\n  d_model: 24\n  n_layer: 2\n  n_head: 4\n",
                "  mixer: {type: hyena, filter_order: 8}\n  layers:\n",
                "    - at: [1]\n      mixer: {type: attention}\n",
                "data:\n  synthetic: {task: passkey, vocab_size: 16, seq_len: 24, key_len: 1, ",
                "depth: [0, 1], train_examples: 0, test_examples: 48}\n",
                "optimizer:\n  lr: 3.0e-3\nschedule:\n  warmup_steps: 1\n",
                "train:\n  steps: 3\n  batch_size: 4\n  precision: fp64\n  device: cpu\n",
                "  sample_tokens: 0\n  threads: 1\n  dist_timeout_s: 20\n"));
  return path;
}

// The synthetic task on 2 and 3 shards: the shards without answers add nothing to the train
// loss (no NaN), and val_loss, val_accuracy and the accuracy per depth equal one process's
// (the predictions gathered into whole rows, each example scored once).
TEST(DistContext, SyntheticTaskTrainsAndEvaluatesOnShardsLikeOneProcess) {
  const std::string dir = test::temp_dir("context_synthetic");
  const std::string cfg = write_passkey(dir);
  auto one = train(load_config(cfg), {dir + "/one", "", 0, true});
  ASSERT_EQ(one.val.size(), 4u);  // loss, accuracy and two depths
  // Some examples right (the untrained model's guesses), so that the accuracy compares counts.
  EXPECT_GT(eval_value(one.val, "accuracy"), 0.0);
  for (int parts : {2, 3}) {
    const std::string run = str(dir, "/cp", parts);
    std::string out;
    ASSERT_EQ(test::run_herd(cp_args(cfg, run, parts, parts), &out), 0) << out;
    expect_losses_match(metric_losses(run), one.losses, str("passkey, context parallel ", parts));
    expect_eval_matches(run, one.val, str("passkey evaluation on ", parts, " shards"));
  }
}

void expect_refused(const std::string& args, const std::string& message,
                    const std::string& run_dir) {
  std::string out;
  EXPECT_NE(test::run_herd(args, &out), 0) << args;
  EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
  EXPECT_FALSE(fs::exists(run_dir + "/checkpoints")) << args;
}

TEST(DistContext, ConfigurationsThatCannotSplitAreRefused) {
  const std::string dir = test::temp_dir("context_refused");
  const std::string cfg = write_hybrid(dir, 2);
  const std::string key = "train.context_parallel: ";
  // C not dividing the world: the launcher, and a lone process.
  expect_refused(cp_args(cfg, dir + "/a", 3, 2), key + "2 does not divide --nproc-per-node 3",
                 dir + "/a");
  expect_refused(str("train ", cfg, " --run-dir ", dir, "/b --set train.context_parallel=2"),
                 key + "2 does not divide the world size 1", dir + "/b");
  // C not dividing the sequence.
  expect_refused(cp_args(cfg, dir + "/c", 3, 3), key + "3 does not divide the sequence length 16",
                 dir + "/c");
  // Blocks: channels that do not split (hyena's d_model 32 over 3 shards) and a short filter
  // reaching past a shard (h3's shift SSM of d_state 16 over shards of 8).
  expect_refused(cp_args(cfg, dir + "/d", 3, 3, " --set model.max_seq_len=18"),
                 "the mixer h.0.mixer d_model 32 does not split into 3 channel groups", dir + "/d");
  const std::string wide = write_hybrid(test::temp_dir("context_refused_wide"), 2, 16);
  expect_refused(cp_args(wide, dir + "/e", 2, 2),
                 "the mixer h.2.mixer d_state (shift SSM) reaches 15 positions back, past a "
                 "shard of 8",
                 dir + "/e");
}

}  // namespace
}  // namespace herd
