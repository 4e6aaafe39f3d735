// Preemption: SIGTERM/SIGINT/SIGUSR1 finish the step, checkpoint and exit 75; a second signal
// aborts; the launcher forwards signals, its ranks agree on the stop step and die with it.
// Also the distributed environment's failure modes (sbatch without srun, MASTER_PORT).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <regex>

#include "ckpt/checkpoint.h"
#include "ckpt/manifest.h"
#include "dist/env.h"
#include "dist/launcher.h"
#include "test_trust_util.h"
#include "train/stop_signal.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using trust::read_text;

// Starts `herd ARGS` in the background: its pid in dir/pid, output in dir/out.log, exit
// status in dir/rc.
pid_t start_herd(const std::string& dir, const std::string& args, const std::string& env = "") {
  const std::string cmd = str("(", env, " ", HERD_BINARY, " ", args, " >", dir, "/out.log 2>&1 & ",
                              "echo $! >", dir, "/pid; wait $!; echo $? >", dir, "/rc) & true");
  EXPECT_EQ(trust::shell(cmd), 0);
  EXPECT_TRUE(trust::wait_for(dir + "/pid"));
  return static_cast<pid_t>(std::stol(read_text(dir + "/pid")));
}

// Waits until metrics.jsonl holds at least `lines` lines.
bool wait_for_steps(const std::string& run_dir, int lines) {
  for (int i = 0; i < 6000; ++i) {
    if (trust::count_lines(read_text(run_dir + "/metrics.jsonl")) >= lines) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int64_t stopped_step(const std::string& log, const std::string& signal) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex("stopped by " + signal + R"( after step (\d+))")))
    return -1;
  return std::stoll(m[1]);
}

bool alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  const std::string stat = read_text(str("/proc/", pid, "/stat"));
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

TEST(Signals, SigtermFinishesTheStepCheckpointsAndExits75) {
  const std::string dir = test::temp_dir("sig_term");
  const std::string cfg = trust::tiny_yaml(dir, 100000);
  // A constant learning rate after warm-up: the schedule does not depend on train.steps, so
  // the stopped run can be compared with a short uninterrupted one.
  const pid_t pid =
      start_herd(dir, str("train ", cfg, " --run-dir ", dir, "/run --set schedule.decay=constant"));
  ASSERT_TRUE(wait_for_steps(dir + "/run", 3));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_TRUE(trust::wait_for(dir + "/rc"));
  const std::string log = read_text(dir + "/out.log");
  EXPECT_EQ(read_text(dir + "/rc"), "75\n") << log;
  const int64_t step = stopped_step(log, "SIGTERM");
  ASSERT_GE(step, 3) << log;
  const std::string ck = dir + "/run/checkpoints/" +
                         str("step_", std::string(8 - std::to_string(step).size(), '0'), step);
  EXPECT_NE(log.find("resume with --resume auto (exit status 75)"), std::string::npos) << log;
  EXPECT_EQ(ckpt::verify(ck), "");
  // Resumed, it ends where an uninterrupted run ends, to the bit.
  const Config two_more =
      load_config(cfg, {str("train.steps=", step + 2), "schedule.decay=constant"});
  auto resumed = train(two_more, {dir + "/run", "auto", 0, true});
  EXPECT_EQ(resumed.start_step, step);
  auto straight = train(two_more, {dir + "/straight", "", 0, true});
  auto a = test::weights_of(resumed.last_checkpoint),
       b = test::weights_of(straight.last_checkpoint);
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
}

// The handler itself, in a child process: a copy of the first signal within 1 s is the same
// request; a later one ends the process at once with 128 + signal.
TEST(Signals, ASecondSignalAbortsAtOnce) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    install_stop_handlers();
    raise(SIGINT);
    if (stop_requested() != SIGINT) _exit(3);
    raise(SIGINT);  // a duplicate: ignored
    usleep(1'200'000);
    raise(SIGINT);
    _exit(4);  // not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGINT);
}

std::string launcher_args(const std::string& dir, const std::string& cfg) {
  return str("train ", cfg, " --run-dir ", dir, "/run --nproc-per-node 2");
}

std::vector<pid_t> rank_pids(const std::string& log) {
  std::vector<pid_t> out;
  static const std::regex re(R"(started rank \d+ \(pid (\d+)\))");
  for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it)
    out.push_back(static_cast<pid_t>(std::stol((*it)[1])));
  return out;
}

// SIGTERM to the launcher reaches both ranks; they stop after the same step.
TEST(Signals, LauncherForwardsSignalsToItsRanks) {
  const std::string dir = test::temp_dir("sig_launcher");
  const std::string cfg = trust::tiny_yaml(dir, 100000, "  dist_timeout_s: 30\n");
  const pid_t pid = start_herd(dir, launcher_args(dir, cfg));
  ASSERT_TRUE(wait_for_steps(dir + "/run", 3));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_TRUE(trust::wait_for(dir + "/rc"));
  const std::string log = read_text(dir + "/out.log");
  EXPECT_EQ(read_text(dir + "/rc"), "75\n") << log;
  EXPECT_NE(log.find("herd: forwarding Terminated to the ranks"), std::string::npos) << log;
  const int64_t step = stopped_step(log, "SIGTERM");
  ASSERT_GE(step, 3) << log;
  auto latest = ckpt::find_latest(dir + "/run/checkpoints");
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(ckpt::open(*latest).state.step, step);
  for (pid_t r : rank_pids(log)) EXPECT_FALSE(alive(r)) << r;
}

// SIGUSR1 (SLURM's --signal) to rank 1 alone: rank 0 learns of it in the step's all-reduce and
// both stop after the same step; the checkpoint is rank 0's.
TEST(Signals, RanksAgreeOnTheStopStep) {
  const std::string dir = test::temp_dir("sig_agree");
  const std::string cfg = trust::tiny_yaml(dir, 100000, "  dist_timeout_s: 30\n");
  start_herd(dir, launcher_args(dir, cfg));
  ASSERT_TRUE(wait_for_steps(dir + "/run", 3));
  const auto pids = rank_pids(read_text(dir + "/out.log"));
  ASSERT_EQ(pids.size(), 2u);
  ASSERT_EQ(::kill(pids[1], SIGUSR1), 0);
  ASSERT_TRUE(trust::wait_for(dir + "/rc"));
  const std::string log = read_text(dir + "/out.log");
  EXPECT_EQ(read_text(dir + "/rc"), "75\n") << log;
  EXPECT_NE(log.find("[rank 1] herd: stop requested"), std::string::npos) << log;
  const int64_t step = stopped_step(log, "a signal to another rank");  // rank 0 got none
  ASSERT_GE(step, 3) << log;
  EXPECT_EQ(ckpt::open(*ckpt::find_latest(dir + "/run/checkpoints")).state.step, step);
}

TEST(Signals, ALauncherKilledWithSigkillLeavesNoOrphans) {
  const std::string dir = test::temp_dir("sig_orphans");
  const std::string cfg = trust::tiny_yaml(dir, 100000, "  dist_timeout_s: 30\n");
  const pid_t pid = start_herd(dir, launcher_args(dir, cfg));
  ASSERT_TRUE(wait_for_steps(dir + "/run", 2));
  const auto pids = rank_pids(read_text(dir + "/out.log"));
  ASSERT_EQ(pids.size(), 2u);
  for (pid_t r : pids) ASSERT_TRUE(alive(r));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  bool gone = false;
  for (int i = 0; i < 600 && !gone; ++i) {  // a guard against a hang, not a timing
    gone = !alive(pids[0]) && !alive(pids[1]);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "rank processes outlived their launcher";
}

TEST(DistEnvSafety, SbatchWithoutSrunIsExplainedAtOnce) {
  try {
    dist::detect_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_JOB_NODELIST", "n1"}});
    FAIL() << "took the batch script for 8 ranks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_NTASKS=8 but this is the batch script's single "
                                         "process (sbatch without srun): start one herd per task "
                                         "with `srun herd train ...`"),
              std::string::npos)
        << e.what();
  }
  auto one = dist::detect_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}});
  EXPECT_EQ(one.world_size, 1);
  auto port = dist::detect_env({{"SLURM_PROCID", "1"},
                                {"SLURM_NTASKS", "2"},
                                {"SLURM_STEP_ID", "0"},
                                {"SLURM_JOB_NODELIST", "n[1-2]"},
                                {"MASTER_PORT", "31337"}});
  EXPECT_EQ(port.master_port, 31337);
  EXPECT_EQ(port.master_addr, "n1");
  auto dflt = dist::detect_env({{"SLURM_PROCID", "1"},
                                {"SLURM_NTASKS", "2"},
                                {"SLURM_STEPID", "0"},
                                {"SLURM_NODELIST", "n1"}});
  EXPECT_EQ(dflt.master_port, 29500);
  auto agent = dist::detect_env({{"RANK", "0"},
                                 {"WORLD_SIZE", "2"},
                                 {"MASTER_ADDR", "h"},
                                 {"MASTER_PORT", "29500"},
                                 {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                 {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(agent.agent_store);
  EXPECT_EQ(agent.store_prefix, "herd/2");
}

// A rank whose backend cannot come up (here: rank 0's port already taken by another
// process) ends with one line, not std::terminate.
TEST(DistEnvSafety, ARendezvousThatFailsIsOneLine) {
  const std::string dir = test::temp_dir("dist_noport");
  const std::string cfg = trust::tiny_yaml(dir, 2, "  dist_timeout_s: 3\n");
  std::string out;
  const int rc =
      trust::shell(str("RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 ", HERD_BINARY,
                       " train ", cfg, " --run-dir ", dir, "/run >", dir, "/out.log 2>&1"));
  out = read_text(dir + "/out.log");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("herd: error: rank 1: rendezvous at 127.0.0.1:1 failed"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("terminate"), std::string::npos) << out;
}

// Under torchrun the agent already hosts the store at MASTER_PORT: the ranks join it as
// clients, and no rank prints an error about a second store.
TEST(DistEnvSafety, UnderTorchrunNoSecondStore) {
  const char* home = std::getenv("HOME");
  const std::string torchrun =
      str(home ? home : "/root", "/.cache/herd/venv-torch-2.11.0/bin/torchrun");
  if (!fs::exists(torchrun)) GTEST_SKIP() << torchrun << " not found (scripts/setup.sh makes it)";
  const std::string dir = test::temp_dir("dist_torchrun_agent");
  const std::string cfg = trust::tiny_yaml(dir, 2, "  dist_timeout_s: 60\n");
  const int rc =
      trust::shell(str(torchrun, " --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1",
                       " --master_port ", dist::free_port(), " --no-python ", HERD_BINARY,
                       " train ", cfg, " --run-dir ", dir, "/run >", dir, "/out.log 2>&1"));
  const std::string out = read_text(dir + "/out.log");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("herd: error"), std::string::npos) << out;
  EXPECT_EQ(out.find("address already in use"), std::string::npos) << out;
  EXPECT_EQ(out.find("EADDRINUSE"), std::string::npos) << out;
  EXPECT_EQ(ckpt::verify(dir + "/run/checkpoints/step_00000002"), "");
}

}  // namespace
}  // namespace herd
