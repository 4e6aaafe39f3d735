// ZeRO-1/2 (train.zero) across real processes (Gloo on the CPU, float64): the sharded step
// against plain data parallel and one process, training runs on 2 and 3 ranks against one
// process, checkpoints that resume on any world size and stage, a rank killed during a
// sharded save, and the configurations refused at start.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "ckpt/checkpoint.h"
#include "fixtures.h"
#include "test_dist_util.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using test::expect_same_weights;
using test::metric_losses;
using test::read_values;
using test::write_config;

// A global batch of 12 (3 micro-steps per rank on 2 ranks, 2 on 3 ranks) and clipping that
// bites on every step.
const std::vector<std::string> kOverrides{"train.batch_size=12", "train.grad_clip=0.05"};

std::string herd_args(const std::string& cfg, const std::string& run_dir, int nproc, int zero,
                      const std::string& more = "") {
  std::string a = str("train ", cfg, " --run-dir ", run_dir, " --nproc-per-node ", nproc,
                      " --set train.zero=", zero);
  for (const auto& o : kOverrides) a += " --set " + o;
  return a + more;
}

TrainResult train_one(const std::string& cfg, const std::string& run_dir,
                      const std::string& resume = "", int64_t stop_after = 0) {
  return train(load_config(cfg, kOverrides), {run_dir, resume, stop_after, true});
}

// dist-selftest zero: every rank's ZeRO parameters, plain data parallel's and one process's
// after 4 steps (odd-sized parameters straddling the slices, three optimizer groups, a
// changing lr, 2 micro-steps per rank, clipping).
void check_sharded_step(int stage, int nproc) {
  const std::string dir = test::temp_dir(str("zero_step", stage));
  std::string out;
  ASSERT_EQ(test::run_herd(str("dist-selftest zero --stage ", stage, " --out ", dir,
                               " --nproc-per-node ", nproc),
                           &out),
            0)
      << out;
  for (int r = 0; r < nproc; ++r) {
    auto v = read_values(dir + "/rank" + std::to_string(r) + ".txt");
    ASSERT_EQ(v.at("world"), nproc) << r;
    EXPECT_GE(v.at("buckets"), 3) << r;
    EXPECT_GE(v.at("uneven_buckets"), 1) << r;     // padding in use
    EXPECT_GE(v.at("straddling_params"), 1) << r;  // a parameter split between ranks
    EXPECT_GT(v.at("first_grad_norm"), v.at("clip")) << r;
    EXPECT_GT(v.at("moved"), 1e-3) << r;
    EXPECT_LT(v.at("max_norm_diff"), 1e-12) << r;
    EXPECT_LT(v.at("zero_vs_one"), 1e-12) << r;
    EXPECT_LT(v.at("zero_vs_dp"), 1e-12) << r;
    EXPECT_LT(v.at("dp_vs_one"), 1e-12) << r;
    // m (and v) for this rank's slices only: 1/P of the parameters plus padding.
    EXPECT_LE(v.at("state_numel"), v.at("params") / nproc + v.at("buckets")) << r;
    EXPECT_EQ(v.at("bucket_numel_held_after_backward"), 0) << r;  // released after reduce-scatter
    if (stage == 2) {
      EXPECT_EQ(v.at("grads_left_after_backward"), 0) << r;  // every .grad released
    } else {
      EXPECT_GT(v.at("grads_left_after_backward"), 0) << r;
    }
  }
  auto v0 = read_values(dir + "/rank0.txt");
  EXPECT_LT(v0.at("gathered_state_vs_one"), 1e-12);
}

TEST(DistZero, Stage1StepEqualsDataParallelAndOneProcess) {
  check_sharded_step(1, 2);
}
TEST(DistZero, Stage2StepOnThreeRanksEqualsDataParallelAndOneProcess) {
  check_sharded_step(2, 3);
}

void expect_losses_match(const std::map<int64_t, double>& got, const std::vector<double>& want,
                         int64_t from_step, const std::string& what) {
  for (int64_t s = from_step; s <= static_cast<int64_t>(want.size()); ++s) {
    ASSERT_TRUE(got.count(s)) << what << ": no loss for step " << s;
    EXPECT_NEAR(got.at(s), want[s - 1], 1e-8 * want[s - 1]) << what << ", step " << s;
  }
}

// Whole training runs (GPT, decay and no_decay groups, micro-batches, clipping) with ZeRO-1
// on 2 ranks and ZeRO-2 on 3 equal one process's.
TEST(DistZero, TrainingRunsEqualOneProcess) {
  const std::string dir = test::temp_dir("zero_train");
  const std::string cfg = write_config(dir, 4);
  auto one = train_one(cfg, dir + "/one");
  for (const auto& [nproc, zero] : std::vector<std::pair<int, int>>{{2, 1}, {3, 2}}) {
    const std::string run = str(dir, "/z", zero);
    std::string out;
    ASSERT_EQ(test::run_herd(herd_args(cfg, run, nproc, zero, " --set logging.level=debug"), &out),
              0)
        << out;
    expect_losses_match(metric_losses(run), one.losses, 1, str("zero ", zero));
    expect_same_weights(one.last_checkpoint, run + "/checkpoints/step_00000004");
  }
}

// A sharded run's checkpoint resumes on any world size and stage; each resumed run equals
// the uninterrupted one (6 steps on one process).
struct ResumeCase {
  std::string dir, cfg;
  TrainResult straight;
  explicit ResumeCase(const std::string& tag)
      : dir(test::temp_dir(tag)), cfg(write_config(dir, 6)), straight(train_one(cfg, dir + "/s")) {}
  void expect_equal(const std::string& run, const std::string& what) const {
    expect_losses_match(metric_losses(run), straight.losses, 1, what);
    expect_same_weights(straight.last_checkpoint, run + "/checkpoints/step_00000006");
  }
};

TEST(DistZero, ResumesZero1OnTwoRanksOnOneRank) {
  ResumeCase c("zero_resume_2to1");
  std::string out;
  ASSERT_EQ(test::run_herd(herd_args(c.cfg, c.dir + "/run", 2, 1, " --stop-after 3"), &out), 0)
      << out;
  auto resumed = train_one(c.cfg, c.dir + "/run", "auto");
  ASSERT_EQ(resumed.start_step, 3);
  c.expect_equal(c.dir + "/run", "2 ranks ZeRO-1 -> 1 rank");
}

TEST(DistZero, ResumesOneRankOnThreeRanksZero1) {
  ResumeCase c("zero_resume_1to3");
  train_one(c.cfg, c.dir + "/run", "", 3);
  std::string out;
  ASSERT_EQ(test::run_herd(herd_args(c.cfg, c.dir + "/run", 3, 1, " --resume auto"), &out), 0)
      << out;
  EXPECT_NE(out.find("resumed from"), std::string::npos) << out;
  c.expect_equal(c.dir + "/run", "1 rank -> 3 ranks ZeRO-1");
}

TEST(DistZero, ResumesZero2AsPlainDataParallel) {
  ResumeCase c("zero_resume_2to0");
  std::string out;
  ASSERT_EQ(test::run_herd(herd_args(c.cfg, c.dir + "/run", 2, 2, " --stop-after 3"), &out), 0)
      << out;
  ASSERT_EQ(test::run_herd(herd_args(c.cfg, c.dir + "/run", 2, 0, " --resume auto"), &out), 0)
      << out;
  c.expect_equal(c.dir + "/run", "ZeRO-2 -> plain data parallel");
}

// Rank 1 dies (SIGKILL) while the step-4 checkpoint's optimizer state is being gathered: the
// run fails naming it, step 2 stays the newest valid checkpoint, and it resumes to the same
// weights as an uninterrupted run.
TEST(DistZero, RankKilledDuringShardedSaveLeavesThePreviousCheckpoint) {
  const std::string dir = test::temp_dir("zero_kill");
  const std::string cfg = write_config(dir, 6, "checkpoint:\n  every: 2\n");
  std::string out;
  ::setenv("HERD_FAULT_KILL_IN_SHARDED_SAVE", "1:2", 1);  // rank 1, its second save
  const int rc = test::run_herd(herd_args(cfg, dir + "/run", 2, 1), &out);
  ::unsetenv("HERD_FAULT_KILL_IN_SHARDED_SAVE");
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("rank 1 (pid"), std::string::npos) << out;
  EXPECT_NE(out.find("killed by signal 9"), std::string::npos) << out;
  const std::string ckpts = dir + "/run/checkpoints";
  const auto complete = ckpt::list_complete(ckpts);
  ASSERT_EQ(complete.size(), 1u) << out;
  EXPECT_EQ(fs::path(complete[0]).filename(), "step_00000002");
  auto latest = ckpt::find_latest(ckpts);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(ckpt::open(*latest).state.step, 2);

  auto straight = train_one(cfg, dir + "/straight");
  auto resumed = train_one(cfg, dir + "/run", "auto");
  EXPECT_EQ(resumed.start_step, 2);
  expect_same_weights(straight.last_checkpoint, resumed.last_checkpoint);
}

TEST(DistZero, RefusedConfigurations) {
  const std::string dir = test::temp_dir("zero_refused");
  const std::string cfg = write_config(dir, 2);
  for (const std::string bad : {"train.zero=3", "train.zero=-1", "train.zero=one"}) {
    try {
      load_config(cfg, {bad});
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("train.zero"), std::string::npos) << e.what();
    }
  }
  std::string out;
  EXPECT_NE(test::run_herd(herd_args(cfg, dir + "/run", 2, 3), &out), 0);
  EXPECT_NE(out.find("train.zero"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir + "/run/checkpoints"));
}

}  // namespace
}  // namespace herd
