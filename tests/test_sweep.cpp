// scripts/sweep, scripts/plot and `herd runs list` on tiny runs of the fortunes fixture.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixtures.h"

namespace herd {
namespace {
namespace fs = std::filesystem;

// Runs a shell command with herd's binary in HERD_BIN; returns the exit status.
int run(const std::string& cmd, std::string* output) {
  const std::string full = std::string("HERD_BIN=") + HERD_BINARY + " " + cmd + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

const std::string kScripts = std::string(HERD_SOURCE_DIR) + "/scripts/";

// Overrides every tiny run of these tests shares: a few steps, one eval batch, no sample.
std::string common_set() {
  return "set: {data.dir: " + test::fortunes_dataset() +
         ", train.steps: 4, train.eval_batches: 1, train.sample_tokens: 0, "
         "checkpoint.every: 2, logging.every: 1, model.d_model: 16, model.max_seq_len: 16}\n";
}

std::string sweep_file(const std::string& dir, const std::string& body) {
  const std::string path = dir + "/sweep.yaml";
  test::write_text(path, "base: configs/tiny-debug.yaml\n" + body);
  return path;
}

TEST(Sweep, GridInterruptionAndRerun) {
  const std::string dir = test::temp_dir("sweep");
  const std::string file =
      sweep_file(dir, "name: grid\n" + common_set() +
                          "grid:\n  optimizer.lr: [1.0e-3, 3.0e-3]\n  model.n_layer: [1, 2]\n");
  const std::string out = dir + "/out", sweep = kScripts + "sweep " + file + " --out " + out;
  std::string log;
  ASSERT_EQ(run(sweep + " --dry-run", &log), 0) << log;
  EXPECT_EQ(count(log, "missing -> start"), 4) << log;
  EXPECT_NE(log.find("lr-0.001_n_layer-2"), std::string::npos) << log;  // readable ids
  EXPECT_FALSE(fs::exists(out + "/grid/lr-0.001_n_layer-2")) << "dry run started a run";

  // An interrupted run: the same overrides, stopped after step 2 with a checkpoint.
  const std::string first = out + "/grid/lr-0.001_n_layer-1";
  ASSERT_EQ(test::run_herd("train " + std::string(HERD_SOURCE_DIR) +
                               "/configs/tiny-debug.yaml --run-dir " + first +
                               " --set data.dir=" + test::fortunes_dataset() +
                               " --set train.steps=4 --set train.eval_batches=1"
                               " --set train.sample_tokens=0 --set checkpoint.every=2"
                               " --set logging.every=1 --set model.d_model=16"
                               " --set model.max_seq_len=16 --set optimizer.lr=0.001"
                               " --set model.n_layer=1 --stop-after 2",
                           &log),
            0)
      << log;
  ASSERT_EQ(test::run_herd("runs list " + first + " --tsv", &log), 0) << log;
  EXPECT_NE(log.find("\tinterrupted\t2\t4\t"), std::string::npos) << log;

  ASSERT_EQ(run(sweep + " --parallel 2 --threads 2", &log), 0) << log;
  EXPECT_NE(log.find("lr-0.001_n_layer-1: interrupted -> resume"), std::string::npos) << log;
  EXPECT_EQ(count(log, "missing -> start"), 3) << log;
  EXPECT_NE(read(first + "/train.log").find("resumed from"), std::string::npos);
  const std::string csv = read(out + "/grid/summary.csv");
  EXPECT_EQ(count(csv, "\n"), 5) << csv;  // header + 4 runs
  EXPECT_EQ(count(csv, ",finished,4,val_loss,"), 4) << csv;
  EXPECT_NE(read(out + "/grid/summary.md").find("| lr-0.003_n_layer-2 | 0.003 | 2 | finished"),
            std::string::npos)
      << read(out + "/grid/summary.md");
  EXPECT_EQ(read(out + "/grid/compare.png").substr(1, 3), "PNG");

  ASSERT_EQ(test::run_herd("runs list " + out, &log), 0) << log;
  EXPECT_EQ(count(log, " finished "), 4) << log;
  EXPECT_EQ(count(log, "step_00000004"), 4) << log;

  ASSERT_EQ(run(sweep, &log), 0) << log;  // everything finished: nothing runs again
  EXPECT_EQ(count(log, "finished -> skip"), 4) << log;
  EXPECT_EQ(count(log, ": exit "), 0) << log;

  const std::string png = dir + "/curves.png";
  ASSERT_EQ(run(kScripts + "plot " + first + " " + out + "/grid/lr-0.003_n_layer-2" +
                    " --metric val_loss --x tokens --out " + png,
                &log),
            0)
      << log;
  EXPECT_NE(log.find("2 run(s)"), std::string::npos) << log;
  EXPECT_EQ(read(png).substr(1, 3), "PNG");
  EXPECT_NE(run(kScripts + "plot " + first + " --metric nonsense --out " + png, &log), 0);
  EXPECT_NE(log.find("no run has nonsense"), std::string::npos) << log;
}

TEST(Sweep, BadKeyIsReportedBeforeAnythingStarts) {
  const std::string dir = test::temp_dir("sweep");
  const std::string file =
      sweep_file(dir, "name: bad\n" + common_set() + "grid:\n  model.n_layr: [1, 2]\n");
  std::string log;
  EXPECT_NE(run(kScripts + "sweep " + file + " --out " + dir + "/out", &log), 0);
  EXPECT_NE(log.find("model.n_layr: unknown key"), std::string::npos) << log;
  EXPECT_NE(log.find("nothing was started"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir + "/out/bad/n_layr-1")) << log;
}

TEST(Sweep, OneFailingRunDoesNotStopTheOthers) {
  const std::string dir = test::temp_dir("sweep");
  // Valid config, but its data folder does not exist: it fails when it starts.
  const std::string file =
      sweep_file(dir, "name: mixed\n" + common_set() + "list:\n  - {data.dir: " + dir +
                          "/nothing, model.vocab_size: 512}\n"
                          "  - {model.n_layer: 1}\n");
  std::string log;
  EXPECT_EQ(run(kScripts + "sweep " + file + " --out " + dir + "/out", &log), 1) << log;
  EXPECT_NE(log.find("1 run(s) failed"), std::string::npos) << log;
  const std::string csv = read(dir + "/out/mixed/summary.csv");
  EXPECT_EQ(count(csv, ",failed,"), 1) << csv;
  EXPECT_EQ(count(csv, ",finished,"), 1) << csv;
}

TEST(Sweep, CtrlCStopsTheRunsAndARerunResumesThem) {
  const std::string dir = test::temp_dir("sweep");
  const std::string file = sweep_file(
      dir, "name: stop\n" + common_set() + "list:\n  - {train.steps: 60, checkpoint.every: 1}\n");
  const std::string run_dir = dir + "/out/stop/steps-60_every-1";
  // SIGINT to the sweep once its run has logged a step (as Ctrl-C in a terminal would).
  test::write_text(dir + "/stop.sh", kScripts + "sweep " + file + " --out " + dir + "/out > " +
                                         dir +
                                         "/log 2>&1 &\npid=$!\n"
                                         "for i in $(seq 1 600); do [ -s " +
                                         run_dir +
                                         "/metrics.jsonl ] && break; sleep 0.1; done\n"
                                         "kill -INT $pid; wait $pid; echo \"rc=$?\"\n");
  std::string log;
  run("bash " + dir + "/stop.sh", &log);
  EXPECT_NE(log.find("rc=130"), std::string::npos) << log << read(dir + "/log");
  EXPECT_FALSE(fs::exists(run_dir + "/herd.pid"));
  ASSERT_EQ(test::run_herd("runs list " + run_dir + " --tsv", &log), 0) << log;
  EXPECT_NE(log.find("\tinterrupted\t"), std::string::npos) << log;
  ASSERT_EQ(run(kScripts + "sweep " + file + " --out " + dir + "/out", &log), 0) << log;
  EXPECT_NE(log.find("steps-60_every-1: interrupted -> resume"), std::string::npos) << log;
  EXPECT_NE(read(dir + "/out/stop/summary.csv").find(",finished,60,"), std::string::npos)
      << read(dir + "/out/stop/summary.csv");
}

TEST(Sweep, ARunFromAnotherRecipeStopsTheSweepAndIsKept) {
  const std::string dir = test::temp_dir("sweep");
  const std::string base = dir + "/base.yaml",
                    tiny = std::string(HERD_SOURCE_DIR) + "/configs/tiny-debug.yaml";
  fs::copy_file(tiny, base);
  auto write = [&](const std::string& extra_set) {
    std::string set = common_set();
    set.insert(set.rfind('}'), extra_set);
    test::write_text(dir + "/sweep.yaml", "base: " + base + "\nname: recipe\n" + set +
                                              "list:\n  - {optimizer.lr: 1.0e-3}\n");
  };
  const std::string sweep = kScripts + "sweep " + dir + "/sweep.yaml --out " + dir + "/out";
  const std::string run_dir = dir + "/out/recipe/lr-0.001";
  write("");
  std::string log;
  ASSERT_EQ(run(sweep, &log), 0) << log;
  ASSERT_EQ(run(sweep + " --threads 1", &log), 0) << "another thread count is the same recipe";
  EXPECT_NE(log.find("lr-0.001: finished -> skip"), std::string::npos) << log;

  // The same run id from an edited base file, then from other overrides: refused, kept.
  test::write_text(base, read(base) + "# edited\n");
  EXPECT_EQ(run(sweep, &log), 2) << log;
  EXPECT_NE(log.find("lr-0.001: made from another recipe (base.yaml edited)"), std::string::npos)
      << log;
  EXPECT_NE(log.find("remove " + run_dir + " to run it again"), std::string::npos) << log;
  EXPECT_EQ(count(log, ": exit "), 0) << log;
  EXPECT_TRUE(fs::exists(run_dir + "/checkpoints")) << "the finished run must be kept";
  fs::copy_file(tiny, base, fs::copy_options::overwrite_existing);
  write(", train.grad_clip: 0.5");
  EXPECT_EQ(run(sweep, &log), 2) << log;
  EXPECT_NE(log.find("(overrides train.grad_clip)"), std::string::npos) << log;
}

// RUN/tb/ from scripts/tb_follow, read back with the tensorboard package's own reader.
TEST(TensorBoard, EventFilesReadBack) {
  const std::string dir = test::temp_dir("tb"), rund = dir + "/run";
  std::string log;
  ASSERT_EQ(test::run_herd("train " + std::string(HERD_SOURCE_DIR) +
                               "/configs/tiny-debug.yaml --run-dir " + rund +
                               " --set data.dir=" + test::fortunes_dataset() +
                               " --set train.steps=4 --set train.eval_batches=1"
                               " --set train.eval_every=2 --set train.sample_tokens=0"
                               " --set model.d_model=16 --set model.max_seq_len=16",
                           &log),
            0)
      << log;
  ASSERT_EQ(run(kScripts + "tb_follow " + rund + " --peak-tflops 1", &log), 0) << log;
  EXPECT_NE(log.find("6 records"), std::string::npos) << log;  // 4 steps + 2 evals
  test::write_text(dir + "/read.py",
                   "import sys\n"
                   "from tensorboard.backend.event_processing.event_accumulator import "
                   "EventAccumulator\n"
                   "ea = EventAccumulator(sys.argv[1]); ea.Reload()\n"
                   "for t in sorted(ea.Tags()['scalars']):\n"
                   "    s = ea.Scalars(t)\n"
                   "    print(t, len(s), s[-1].step, '%.6g' % s[-1].value)\n");
  ASSERT_EQ(run("bash -c 'source " + kScripts + "env.sh && \"$HERD_VENV/bin/python\" " + dir +
                    "/read.py " + rund + "/tb'",
                &log),
            0)
      << log;
  for (const char* tag : {"train/loss 4 4 ", "train/lr 4 4 ", "train/grad_norm 4 4 ",
                          "train/tokens_per_s 4 4 ", "train/mfu 4 4 ", "eval/loss 2 4 "})
    EXPECT_NE(log.find(tag), std::string::npos) << tag << "\n" << log;
  // The last train loss is the one metrics.jsonl recorded.
  const std::string metrics = read(rund + "/metrics.jsonl");
  const auto last = metrics.rfind("{\"step\":4,\"loss\":");
  ASSERT_NE(last, std::string::npos) << metrics;
  const double loss = std::stod(metrics.substr(last + 17));
  char want[64];
  std::snprintf(want, sizeof want, "train/loss 4 4 %.6g",
                static_cast<double>(static_cast<float>(loss)));
  EXPECT_NE(log.find(want), std::string::npos) << want << "\n" << log;
}

}  // namespace
}  // namespace herd
