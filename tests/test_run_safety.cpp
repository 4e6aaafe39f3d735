// Runs that never overwrite work: a run dir with checkpoints needs --resume or --overwrite,
// redone steps replace their metrics lines, resuming past train.steps is refused, and
// non-finite steps are skipped (train.max_bad_steps in a row stop the run).
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "ckpt/checkpoint.h"
#include "ckpt/manifest.h"
#include "test_trust_util.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using trust::read_text;

// Step numbers of the train lines of metrics.jsonl, in file order.
std::vector<int64_t> metric_steps(const std::string& run_dir) {
  std::vector<int64_t> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  static const std::regex re(R"(^\{"step":(\d+),"loss")");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, re)) out.push_back(std::stoll(m[1]));
  return out;
}

std::vector<int64_t> range(int64_t a, int64_t b) {
  std::vector<int64_t> v;
  for (int64_t i = a; i <= b; ++i) v.push_back(i);
  return v;
}

TEST(RunSafety, ARunDirWithCheckpointsIsRefusedUnlessResumeOrOverwrite) {
  const std::string dir = test::temp_dir("run_refuse");
  const std::string cfg = trust::tiny_yaml(dir, 2);
  train(load_config(cfg), {dir + "/run", "", 0, true});
  const auto before = trust::snapshot(dir + "/run");
  std::string out;
  EXPECT_EQ(test::run_herd(str("train ", cfg, " --run-dir ", dir, "/run"), &out), 1);
  EXPECT_NE(out.find("herd: error: " + dir +
                     "/run: already holds checkpoints (newest step_00000002); pass --resume auto "
                     "to continue that run, or --overwrite to start over"),
            std::string::npos)
      << out;
  EXPECT_EQ(trust::count_lines(out), 1) << out;
  EXPECT_EQ(trust::snapshot(dir + "/run"), before);
  EXPECT_THROW(train(load_config(cfg), {dir + "/run", "", 0, true}), Error);
  EXPECT_EQ(trust::snapshot(dir + "/run"), before);

  ASSERT_EQ(test::run_herd(str("train ", cfg, " --run-dir ", dir,
                               "/run --overwrite --set "
                               "train.steps=3 --set checkpoint.every=1"),
                           &out),
            0)
      << out;
  EXPECT_EQ(metric_steps(dir + "/run"), range(1, 3));
  auto complete = ckpt::list_complete(dir + "/run/checkpoints");
  ASSERT_EQ(complete.size(), 3u);
  EXPECT_EQ(fs::path(complete.back()).filename(), "step_00000003");
}

// A run that died after step 6 but before its checkpoint: the resumed run redoes 5 and 6,
// whose lines replace the old ones (same values: the resume is exact).
TEST(RunSafety, RedoneStepsReplaceTheirMetricsLines) {
  const std::string dir = test::temp_dir("run_metrics");
  const std::string cfg = trust::tiny_yaml(dir, 6, "checkpoint:\n  every: 2\n  keep_last: 5\n");
  train(load_config(cfg), {dir + "/run", "", 0, true});
  const std::string old_metrics = read_text(dir + "/run/metrics.jsonl");
  fs::remove_all(dir + "/run/checkpoints/step_00000006");
  train(load_config(cfg), {dir + "/run", "auto", 0, true});
  EXPECT_EQ(metric_steps(dir + "/run"), range(1, 6));
  auto strip_speed = [](const std::string& s) {
    return std::regex_replace(s, std::regex(R"("tokens_per_s":[^,]+,)"), "");
  };
  EXPECT_EQ(strip_speed(read_text(dir + "/run/metrics.jsonl")), strip_speed(old_metrics));
}

TEST(RunSafety, ResumingPastTrainStepsIsRefused) {
  const std::string dir = test::temp_dir("run_past");
  const std::string cfg = trust::tiny_yaml(dir, 4);
  train(load_config(cfg), {dir + "/run", "", 0, true});
  const auto before = trust::snapshot(dir + "/run");
  std::string out;
  EXPECT_EQ(
      test::run_herd(
          str("train ", cfg, " --run-dir ", dir, "/run --resume auto --set train.steps=2"), &out),
      1);
  EXPECT_NE(out.find("step_00000004: checkpoint is at step 4, past train.steps 2; raise "
                     "train.steps"),
            std::string::npos)
      << out;
  EXPECT_EQ(trust::snapshot(dir + "/run"), before);
  EXPECT_FALSE(fs::exists(dir + "/run/checkpoints/step_00000002"));
}

TEST(RunSafety, ResumingAnOlderCheckpointOverNewerOnesIsRefused) {
  const std::string dir = test::temp_dir("run_older");
  const std::string cfg = trust::tiny_yaml(dir, 4, "checkpoint:\n  every: 2\n");
  train(load_config(cfg), {dir + "/run", "", 0, true});
  const std::string old = dir + "/run/checkpoints/step_00000002";
  std::string out;
  EXPECT_EQ(test::run_herd(str("train ", cfg, " --run-dir ", dir, "/run --resume ", old), &out), 1);
  EXPECT_NE(out.find("step_00000004 is newer and would be overwritten"), std::string::npos) << out;
  ASSERT_EQ(
      test::run_herd(str("train ", cfg, " --run-dir ", dir, "/run --resume ", old, " --overwrite"),
                     &out),
      0)
      << out;
  EXPECT_NE(out.find("resumed from " + old), std::string::npos) << out;
}

// Steps 3 and 4 have a NaN loss: both skipped (no update: the step-4 weights are the
// step-2 ones), counted in the log and in metrics.jsonl; the run goes on.
TEST(RunSafety, NonFiniteStepsAreSkippedAndCounted) {
  const std::string dir = test::temp_dir("run_nan");
  const std::string cfg = trust::tiny_yaml(dir, 6, "checkpoint:\n  every: 2\n  keep_last: 5\n");
  EXPECT_EQ(trust::shell(str("HERD_FAULT_NONFINITE_STEPS=3,4 ", HERD_BINARY, " train ", cfg,
                             " --run-dir ", dir, "/run >", dir, "/out.log 2>&1")),
            0)
      << read_text(dir + "/out.log");
  const std::string log = read_text(dir + "/out.log");
  EXPECT_NE(log.find("step 3: loss nan, gradient norm nan: not finite, step skipped (1 in a row, "
                     "1 in all)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("step skipped (2 in a row, 2 in all)"), std::string::npos) << log;
  const std::string metrics = read_text(dir + "/run/metrics.jsonl");
  EXPECT_NE(metrics.find(R"("skipped":1,"bad_steps":2)"), std::string::npos) << metrics;
  const std::string ck = dir + "/run/checkpoints/";
  auto a = test::weights_of(ck + "step_00000002"), b = test::weights_of(ck + "step_00000004"),
       c = test::weights_of(ck + "step_00000006");
  for (const auto& [name, t] : a) {
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
    EXPECT_TRUE(torch::isfinite(c.at(name)).all().item<bool>()) << name;
  }
  EXPECT_FALSE(torch::equal(a.begin()->second, c.begin()->second));  // training went on
}

TEST(RunSafety, MaxBadStepsInARowStopTheRunWithTheLastGoodCheckpoint) {
  const std::string dir = test::temp_dir("run_nan_stop");
  const std::string cfg =
      trust::tiny_yaml(dir, 8, "  max_bad_steps: 3\ncheckpoint:\n  every: 2\n  keep_last: 5\n");
  EXPECT_EQ(trust::shell(str("HERD_FAULT_NONFINITE_STEPS=3,4,5,6 ", HERD_BINARY, " train ", cfg,
                             " --run-dir ", dir, "/run >", dir, "/out.log 2>&1")),
            1);
  const std::string log = read_text(dir + "/out.log");
  EXPECT_NE(log.find("herd: error: step 5: 3 steps in a row with a non-finite loss or gradient "
                     "norm (train.max_bad_steps 3)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("Last good checkpoint: " + dir + "/run/checkpoints/step_00000004"),
            std::string::npos)
      << log;
  EXPECT_EQ(ckpt::verify(dir + "/run/checkpoints/step_00000002"), "");
  EXPECT_FALSE(fs::exists(dir + "/run/checkpoints/step_00000006"));
}

}  // namespace
}  // namespace herd
