// Data-parallel training across real processes (Gloo on the CPU): environment detection,
// gradient buckets against one process, 2 ranks vs 1 rank, resume across world sizes,
// torchrun-style variables, and a rank that dies or hangs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "ckpt/checkpoint.h"
#include "dist/env.h"
#include "dist/launcher.h"
#include "fixtures.h"
#include "test_dist_util.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using test::expect_same_weights;
using test::last_eval;
using test::metric_losses;
using test::read_text;
using test::write_config;

// Runs a shell command line; returns its exit status.
int shell(const std::string& cmd) {
  const int s = std::system(cmd.c_str());
  return WIFEXITED(s) ? WEXITSTATUS(s) : 128;
}

// Two ranks started by hand with torchrun's variables, in the background; each rank's pid and
// output go to dir/rank<R>.{pid,log}, its exit status to dir/rank<R>.rc.
void start_torchrun_style(const std::string& dir, const std::string& train_args) {
  const int port = dist::free_port();
  std::string script;
  for (int r = 0; r < 2; ++r)
    script += str("(RANK=", r, " WORLD_SIZE=2 LOCAL_RANK=", r,
                  " MASTER_ADDR=127.0.0.1 MASTER_PORT=", port, " ", HERD_BINARY, " train ",
                  train_args, " >", dir, "/rank", r, ".log 2>&1 & echo $! >", dir, "/rank", r,
                  ".pid; wait $!; echo $? >", dir, "/rank", r, ".rc) & ");
  ASSERT_EQ(shell(script + "true"), 0);
}

// Waits (guarding against a hang, not timing anything) until `path` exists.
bool wait_for(const std::string& path, int guard_s = 600) {
  for (int i = 0; i < guard_s * 10; ++i) {
    if (fs::exists(path) && fs::file_size(path) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

pid_t read_pid(const std::string& path) {
  EXPECT_TRUE(wait_for(path));
  return static_cast<pid_t>(std::stol(read_text(path)));
}

TEST(DistEnv, TorchrunSlurmAndErrors) {
  auto e = dist::detect_env({{"RANK", "1"},
                             {"WORLD_SIZE", "4"},
                             {"LOCAL_RANK", "1"},
                             {"MASTER_ADDR", "n1"},
                             {"MASTER_PORT", "1234"}});
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "n1");
  EXPECT_EQ(e.master_port, 1234);
  auto s = dist::detect_env({{"SLURM_PROCID", "5"},
                             {"SLURM_NTASKS", "8"},
                             {"SLURM_LOCALID", "1"},
                             {"SLURM_STEP_ID", "0"},
                             {"SLURM_JOB_NODELIST", "gpu[07-08,11],cpu1"}});
  EXPECT_EQ(s.source, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.master_addr, "gpu07");
  EXPECT_EQ(dist::first_slurm_host("a1,b2"), "a1");
  EXPECT_EQ(dist::detect_env({}).world_size, 1);
  try {
    dist::detect_env({{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}});
    FAIL() << "accepted RANK=x";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("RANK=x: expected an integer in [0, WORLD_SIZE=2)"),
              std::string::npos)
        << err.what();
  }
  EXPECT_THROW(dist::detect_env({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), Error);
  EXPECT_THROW(dist::detect_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}}), Error);  // no MASTER_ADDR
}

// The synced gradient of 2 ranks (2 micro-steps each, several buckets) equals one process's
// gradient over both ranks' rows.
TEST(Dist, GradSyncEqualsOneProcessGradient) {
  const std::string dir = test::temp_dir("gradsync");
  std::string out;
  ASSERT_EQ(test::run_herd("dist-selftest grad-sync --out " + dir + " --nproc-per-node 2", &out), 0)
      << out;
  for (int r = 0; r < 2; ++r) {
    std::map<std::string, double> v;
    std::ifstream in(dir + "/rank" + std::to_string(r) + ".txt");
    std::string k;
    double x;
    while (in >> k >> x) v[k] = x;
    ASSERT_EQ(v["world"], 2) << r;
    EXPECT_GE(v["buckets"], 3) << r;
    EXPECT_EQ(v["micro_steps"], 2) << r;
    EXPECT_EQ(v["collectives_after_first_micro_step"], 0) << r;  // no sync while accumulating
    // Launched from hooks before wait(): every bucket but the last, which holds the parameter
    // no backward reaches (wait() sends it).
    EXPECT_EQ(v["collectives_during_backward"], v["buckets"] - 1) << r;
    EXPECT_GT(v["ref_grad_norm2"], 1e-6) << r;
    EXPECT_LT(v["max_grad_diff"], 1e-13) << r;
  }
}

// K steps on 2 ranks (launcher) = K steps on 1 rank at the same global batch: losses, weights
// and the validation figures (the 2-rank run also recomputes its blocks in backward, which
// must not change a thing, gradient buckets included).
TEST(Dist, TwoRanksTrainLikeOne) {
  const std::string dir = test::temp_dir("dist_equal");
  const std::string cfg = write_config(dir, 4);
  auto one = train(load_config(cfg), {dir + "/one", "", 0, true});
  std::string out;
  ASSERT_EQ(test::run_herd("train " + cfg + " --run-dir " + dir +
                               "/two --nproc-per-node 2 --set logging.level=debug"
                               " --set train.activation_checkpointing=layer",
                           &out),
            0)
      << out;
  auto two = metric_losses(dir + "/two");
  ASSERT_EQ(two.size(), 4u) << out;
  for (int64_t s = 1; s <= 4; ++s)
    EXPECT_NEAR(two[s], one.losses[s - 1], 1e-8 * std::abs(one.losses[s - 1])) << "step " << s;
  expect_same_weights(one.last_checkpoint, dir + "/two/checkpoints/step_00000004");
  // Evaluation shared out (3 batches: 2 on rank 0, 1 on rank 1) and reduced: the same figures.
  const auto val = last_eval(dir + "/two");
  ASSERT_EQ(val.size(), 2u) << read_text(dir + "/two/metrics.jsonl");
  EXPECT_NEAR(val.at("val_loss"), one.val_loss, 1e-8 * one.val_loss);
  EXPECT_NEAR(val.at("val_ppl"), eval_value(one.val, "ppl"), 1e-8 * eval_value(one.val, "ppl"));
  EXPECT_EQ(out.find("[rank 1] step"), std::string::npos) << "rank 1 logged progress:\n" << out;
  EXPECT_NE(out.find("step 4/4 | loss"), std::string::npos) << out;
}

// A checkpoint from 2 ranks resumes on 1 and the reverse; training continues on the same
// samples as an uninterrupted 1-rank run.
TEST(Dist, ResumeAcrossWorldSizes) {
  const std::string dir = test::temp_dir("dist_resume");
  const std::string cfg = write_config(dir, 6);
  auto straight = train(load_config(cfg), {dir + "/straight", "", 0, true});
  std::string out;
  ASSERT_EQ(
      test::run_herd("train " + cfg + " --run-dir " + dir + "/a --nproc-per-node 2 --stop-after 3",
                     &out),
      0)
      << out;
  auto a = train(load_config(cfg), {dir + "/a", "auto", 0, true});
  ASSERT_EQ(a.start_step, 3);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(a.losses[i], straight.losses[i + 3], 1e-10) << "2 -> 1 ranks, step " << i + 4;
  expect_same_weights(straight.last_checkpoint, a.last_checkpoint);

  train(load_config(cfg), {dir + "/b", "", 3, true});
  ASSERT_EQ(test::run_herd(
                "train " + cfg + " --run-dir " + dir + "/b --nproc-per-node 2 --resume auto", &out),
            0)
      << out;
  EXPECT_NE(out.find("resumed from"), std::string::npos) << out;
  auto b = metric_losses(dir + "/b");
  ASSERT_EQ(b.size(), 6u) << out;
  for (int64_t s = 4; s <= 6; ++s)
    EXPECT_NEAR(b[s], straight.losses[s - 1], 1e-8 * straight.losses[s - 1])
        << "1 -> 2 ranks, step " << s;
  expect_same_weights(straight.last_checkpoint, dir + "/b/checkpoints/step_00000006");
}

TEST(Dist, BatchThatDoesNotSplitIsRefused) {
  const std::string dir = test::temp_dir("dist_split");
  const std::string cfg = write_config(dir, 2);
  std::string out;
  EXPECT_NE(test::run_herd("train " + cfg + " --run-dir " + dir + "/run --nproc-per-node 3", &out),
            0);
  EXPECT_NE(out.find("train.batch_size: 8 does not divide among --nproc-per-node 3"),
            std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(dir + "/run/checkpoints"));
}

// herd as one rank of torchrun: the variables set by hand.
TEST(Dist, TorchrunVariablesHonoured) {
  const std::string dir = test::temp_dir("dist_torchrun");
  const std::string cfg = write_config(dir, 3);
  auto one = train(load_config(cfg), {dir + "/one", "", 0, true});
  start_torchrun_style(dir, cfg + " --run-dir " + dir + "/run");
  ASSERT_TRUE(wait_for(dir + "/rank0.rc") && wait_for(dir + "/rank1.rc"));
  EXPECT_EQ(read_text(dir + "/rank0.rc"), "0\n") << read_text(dir + "/rank0.log");
  EXPECT_EQ(read_text(dir + "/rank1.rc"), "0\n") << read_text(dir + "/rank1.log");
  auto two = metric_losses(dir + "/run");
  ASSERT_EQ(two.size(), 3u);
  for (int64_t s = 1; s <= 3; ++s)
    EXPECT_NEAR(two[s], one.losses[s - 1], 1e-8 * one.losses[s - 1]) << "step " << s;
  EXPECT_EQ(read_text(dir + "/rank1.log").find("step 3/3"), std::string::npos);
  EXPECT_NE(read_text(dir + "/rank0.log").find("step 3/3"), std::string::npos);
}

// Kills rank 1 (SIGKILL, or SIGSTOP for a hang) once a checkpoint exists; rank 0 must exit
// non-zero naming rank 1 and the newest complete checkpoint must still load.
void check_failure(int signal_number, const std::string& tag) {
  const std::string dir = test::temp_dir(tag);
  const std::string cfg = write_config(dir, 2000, "checkpoint:\n  every: 2\n  keep_last: 2\n");
  start_torchrun_style(dir, cfg + " --run-dir " + dir + "/run --set train.dist_timeout_s=5");
  ASSERT_TRUE(wait_for(dir + "/run/checkpoints/latest"));
  const pid_t victim = read_pid(dir + "/rank1.pid");
  ASSERT_EQ(::kill(victim, signal_number), 0);
  ASSERT_TRUE(wait_for(dir + "/rank0.rc"));
  if (signal_number != SIGKILL) ::kill(victim, SIGKILL);
  const std::string log = read_text(dir + "/rank0.log");
  EXPECT_NE(read_text(dir + "/rank0.rc"), "0\n") << log;
  EXPECT_NE(log.find("rank 1 stopped"), std::string::npos) << log;
  auto latest = ckpt::find_latest(dir + "/run/checkpoints");
  ASSERT_TRUE(latest.has_value());
  auto ck = ckpt::open(*latest);
  EXPECT_GE(ck.state.step, 2);
  EXPECT_FALSE(test::weights_of(*latest).empty());
}

TEST(Dist, KilledRankEndsTheRunNamingIt) {
  check_failure(SIGKILL, "dist_kill");
}
TEST(Dist, HungRankEndsTheRunNamingIt) {
  check_failure(SIGSTOP, "dist_hang");
}

// The launcher stops the other ranks and reports the one that failed.
TEST(Dist, LauncherReportsTheFailedRank) {
  const std::string dir = test::temp_dir("dist_launcher");
  const std::string cfg = write_config(dir, 2000, "checkpoint:\n  every: 2\n");
  const std::string cmd =
      str(HERD_BINARY, " train ", cfg, " --run-dir ", dir, "/run --nproc-per-node 2 >", dir,
          "/out.log 2>&1; echo $? >", dir, "/rc");
  ASSERT_EQ(shell("(" + cmd + ") & true"), 0);
  ASSERT_TRUE(wait_for(dir + "/run/checkpoints/latest"));
  std::smatch m;
  const std::string started = read_text(dir + "/out.log");
  ASSERT_TRUE(std::regex_search(started, m, std::regex(R"(started rank 1 \(pid (\d+)\))")))
      << started;
  ASSERT_EQ(::kill(static_cast<pid_t>(std::stol(m[1])), SIGKILL), 0);
  ASSERT_TRUE(wait_for(dir + "/rc"));
  const std::string log = read_text(dir + "/out.log");
  EXPECT_EQ(read_text(dir + "/rc"), "1\n") << log;
  EXPECT_NE(log.find(str("herd: error: rank 1 (pid ", m[1].str(), ") was killed by signal 9")),
            std::string::npos)
      << log;
  EXPECT_TRUE(ckpt::find_latest(dir + "/run/checkpoints").has_value());
}

}  // namespace
}  // namespace herd
