// Checkpoints that cannot lose work: the manifest catches corrupt, truncated and missing files,
// --resume auto passes over a bad newest checkpoint naming it, a full disk leaves the previous
// checkpoint untouched, stale temporaries go at the next save, retention keeps the newest.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>

#include "ckpt/checkpoint.h"
#include "ckpt/manifest.h"
#include "test_trust_util.h"
#include "train/trainer.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using trust::read_text;

// A run of `steps` steps with a checkpoint every 2; returns its checkpoints dir.
std::string trained_run(const std::string& dir, int64_t steps, int64_t keep_last = 5) {
  const std::string cfg =
      trust::tiny_yaml(dir, steps, str("checkpoint:\n  every: 2\n  keep_last: ", keep_last, "\n"));
  train(load_config(cfg), {dir + "/run", "", 0, true});
  return dir + "/run/checkpoints";
}

void flip_bytes(const std::string& path, int64_t count) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  const auto size = static_cast<int64_t>(fs::file_size(path));
  f.seekg(size / 2);
  std::string bytes(static_cast<size_t>(count), '\0');
  f.read(bytes.data(), count);
  for (auto& c : bytes) c = static_cast<char>(~c);
  f.seekp(size / 2);
  f.write(bytes.data(), count);
}

std::string open_error(const std::string& checkpoint) {
  try {
    ckpt::open(checkpoint);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointSafety, ManifestCatchesCorruptTruncatedAndMissingFiles) {
  const std::string dir = test::temp_dir("ck_manifest");
  const std::string ck = trained_run(dir, 4);
  const std::string s4 = ck + "/step_00000004", s2 = ck + "/step_00000002";
  ASSERT_EQ(ckpt::verify(s4), "");
  EXPECT_NE(read_text(s4 + "/manifest.yaml").find("model.pt"), std::string::npos);

  flip_bytes(s4 + "/model.pt", 64);  // the case: 64 bytes in the middle of model.pt
  EXPECT_NE(open_error(s4).find("model.pt: checksum"), std::string::npos) << open_error(s4);
  auto pick = ckpt::pick_latest(ck);
  ASSERT_TRUE(pick.path.has_value());
  EXPECT_EQ(*pick.path, s2);
  ASSERT_EQ(pick.skipped.size(), 1u);
  EXPECT_NE(pick.skipped[0].find("step_00000004: model.pt: checksum"), std::string::npos)
      << pick.skipped[0];

  fs::resize_file(s2 + "/optimizer.pt", fs::file_size(s2 + "/optimizer.pt") / 2);
  EXPECT_NE(open_error(s2).find("optimizer.pt: "), std::string::npos);
  EXPECT_NE(open_error(s2).find("(truncated)"), std::string::npos) << open_error(s2);
  EXPECT_FALSE(ckpt::pick_latest(ck).path.has_value());

  const std::string other = trained_run(test::temp_dir("ck_manifest2"), 2);
  fs::remove(other + "/step_00000002/rng.pt");
  EXPECT_NE(open_error(other + "/step_00000002").find("rng.pt: missing"), std::string::npos);
  fs::remove(other + "/step_00000002/manifest.yaml");
  EXPECT_NE(open_error(other + "/step_00000002").find("no manifest.yaml (incomplete save)"),
            std::string::npos);
  EXPECT_TRUE(ckpt::list_complete(other).empty());
}

TEST(CheckpointSafety, ResumeAutoSkipsACorruptNewestNamingIt) {
  const std::string dir = test::temp_dir("ck_skip");
  const std::string ck = trained_run(dir, 4);
  flip_bytes(ck + "/step_00000004/model.pt", 64);
  std::string out;
  ASSERT_EQ(test::run_herd(str("train ", dir, "/tiny.yaml --run-dir ", dir,
                               "/run --resume auto --set train.steps=6"),
                           &out),
            0)
      << out;
  EXPECT_NE(out.find("skipping checkpoint " + ck + "/step_00000004: model.pt: checksum"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("resumed from " + ck + "/step_00000002 at step 2"), std::string::npos) << out;
  EXPECT_EQ(ckpt::verify(ck + "/step_00000004"), "");  // redone and rewritten, valid again
  EXPECT_EQ(*ckpt::find_latest(ck), ck + "/step_00000006");
}

TEST(CheckpointSafety, NoValidCheckpointIsAnErrorNotAFreshStart) {
  const std::string dir = test::temp_dir("ck_none");
  const std::string ck = trained_run(dir, 2);
  flip_bytes(ck + "/step_00000002/model.pt", 64);
  const auto before = trust::snapshot(dir + "/run");
  std::string out;
  EXPECT_EQ(
      test::run_herd(str("train ", dir, "/tiny.yaml --run-dir ", dir, "/run --resume auto"), &out),
      1);
  EXPECT_NE(out.find("herd: error: " + ck + ": no valid checkpoint to resume (" + ck +
                     "/step_00000002: model.pt: checksum"),
            std::string::npos)
      << out;
  EXPECT_EQ(trust::snapshot(dir + "/run"), before);
}

// A write limit (RLIMIT_FSIZE) as a full disk: the save fails naming the file and the
// reason, removes its partial copy, and the previous checkpoint still verifies.
TEST(CheckpointSafety, FullDiskLeavesThePreviousCheckpointUntouched) {
  const std::string dir = test::temp_dir("ck_full");
  const std::string ck = trained_run(dir, 2);
  const auto before = trust::snapshot(ck + "/step_00000002");
  Config cfg = load_config(dir + "/tiny.yaml");
  Gpt model(with_dataset(cfg, data::load_manifest(cfg.data.dir)).model);
  ckpt::SaveRequest req;
  req.checkpoints_dir = ck;
  req.state.step = 4;
  req.model = model.ptr().get();
  req.config = cfg.resolved.node();
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 16 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    ckpt::save(req);
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  EXPECT_NE(error.find("model.pt: write failed (File too large)"), std::string::npos) << error;
  EXPECT_NE(error.find("the previous checkpoint " + ck + "/step_00000002 is untouched"),
            std::string::npos)
      << error;
  for (const auto& e : fs::directory_iterator(ck))
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();  // no partial copy left
  EXPECT_FALSE(fs::exists(ck + "/step_00000004"));
  EXPECT_EQ(trust::snapshot(ck + "/step_00000002"), before);
  EXPECT_EQ(ckpt::verify(ck + "/step_00000002"), "");
  EXPECT_EQ(read_text(ck + "/latest"), "step_00000002\n");
}

// The same through the CLI: `ulimit -f` under herd train ends the run with the error.
TEST(CheckpointSafety, FullDiskEndsTheRunWithAClearError) {
  const std::string dir = test::temp_dir("ck_full_cli");
  const std::string ck = trained_run(dir, 2);
  const std::string cmd =
      str("ulimit -f 64; ", HERD_BINARY, " train ", dir, "/tiny.yaml --run-dir ", dir,
          "/run --resume auto --set train.steps=4 >", dir, "/out.log 2>&1");
  EXPECT_EQ(trust::shell("bash -c '" + cmd + "'"), 1);
  const std::string log = read_text(dir + "/out.log");
  EXPECT_NE(log.find("herd: error: checkpoint " + ck + "/step_00000004 not written: "),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("File too large"), std::string::npos) << log;
  EXPECT_EQ(ckpt::verify(ck + "/step_00000002"), "");
  EXPECT_EQ(*ckpt::find_latest(ck), ck + "/step_00000002");
}

TEST(CheckpointSafety, StaleTemporariesGoAtTheNextSave) {
  const std::string dir = test::temp_dir("ck_stale");
  const std::string ck = trained_run(dir, 2);
  for (const char* name : {".tmp-step_00000004-99999", ".old-step_00000002-1", ".del-step_1"}) {
    fs::create_directories(ck + "/" + name);
    test::write_text(ck + "/" + name + "/model.pt", "partial");
  }
  EXPECT_EQ(ckpt::list_complete(ck).size(), 1u);  // temporaries are never taken for checkpoints
  train(load_config(dir + "/tiny.yaml", {"train.steps=4"}), {dir + "/run", "auto", 0, true});
  for (const auto& e : fs::directory_iterator(ck))
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
}

TEST(CheckpointSafety, RetentionKeepsTheNewestAndDeletesOldestFirst) {
  const std::string dir = test::temp_dir("ck_keep");
  const std::string ck = trained_run(dir, 8, 2);
  auto complete = ckpt::list_complete(ck);
  ASSERT_EQ(complete.size(), 2u);
  EXPECT_EQ(fs::path(complete[0]).filename(), "step_00000006");
  EXPECT_EQ(fs::path(complete[1]).filename(), "step_00000008");
  // A save older than the kept ones (a resume of an earlier checkpoint) is never pruned.
  Config cfg = load_config(dir + "/tiny.yaml");
  Gpt model(with_dataset(cfg, data::load_manifest(cfg.data.dir)).model);
  ckpt::SaveRequest req;
  req.checkpoints_dir = ck;
  req.state.step = 3;
  req.model = model.ptr().get();
  req.config = cfg.resolved.node();
  req.keep_last = 1;
  const std::string saved = ckpt::save(req);
  EXPECT_TRUE(fs::exists(saved));
  EXPECT_EQ(ckpt::verify(saved), "");
  EXPECT_EQ(read_text(ck + "/latest"), "step_00000003\n");  // `latest` names an existing one
}

}  // namespace
}  // namespace herd
