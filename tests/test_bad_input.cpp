// Bad input, tried systematically through the CLI: every class of input a user can get wrong
// gives one error line naming the file and the field, a non-zero exit, and changes no file.
// docs/troubleshooting.md lists the same classes with their messages and fixes.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "test_trust_util.h"

namespace herd {
namespace {
namespace fs = std::filesystem;
using trust::read_text;

// The lines of `out` that start with "herd: error:".
std::vector<std::string> error_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("herd: error:", 0) == 0) lines.push_back(line);
  return lines;
}

// Runs `herd ARGS` and checks the contract: non-zero exit, exactly one error line holding every
// string of `expect`, no backtrace, and nothing under `watched` changed.
void expect_rejected(const std::string& args, const std::vector<std::string>& expect,
                     const std::vector<std::string>& watched) {
  std::vector<std::map<std::string, std::pair<uintmax_t, int64_t>>> before;
  for (const auto& w : watched) before.push_back(trust::snapshot(w));
  std::string out;
  const int rc = test::run_herd(args, &out);
  EXPECT_NE(rc, 0) << args << "\n" << out;
  const auto errors = error_lines(out);
  ASSERT_EQ(errors.size(), 1u) << args << "\n" << out;
  for (const auto& e : expect) EXPECT_NE(errors[0].find(e), std::string::npos) << e << "\n" << out;
  EXPECT_EQ(out.find("Exception raised from"), std::string::npos) << out;
  EXPECT_EQ(out.find("terminate called"), std::string::npos) << out;
  for (size_t i = 0; i < watched.size(); ++i)
    EXPECT_EQ(trust::snapshot(watched[i]), before[i]) << "changed: " << watched[i];
}

// The tiny config with `extra` appended to its text (a later duplicate section overrides).
std::string config_with(const std::string& dir, const std::string& text) {
  const std::string path = dir + "/bad.yaml";
  test::write_text(path, text);
  return path;
}

std::string base_yaml(const std::string& data_dir) {
  return str("model:\n  d_model: 32\n  n_layer: 2\n  n_head: 4\n  max_seq_len: 32\n",
             "data:\n  dir: ", data_dir, "\n", "train:\n  steps: 2\n  batch_size: 8\n",
             "  device: cpu\n  sample_tokens: 0\n  threads: 1\n");
}

// A private copy of the fortunes dataset whose manifest points at its own tokenizer.
std::string dataset_copy(const std::string& dir) {
  const std::string copy = dir + "/data";
  fs::copy(test::fortunes_dataset(), copy, fs::copy_options::recursive);
  std::string m = read_text(copy + "/manifest.yaml");
  const std::string from = test::fortunes_dataset() + "/tokenizer.model";
  m.replace(m.find(from), from.size(), copy + "/tokenizer.model");
  test::write_text(copy + "/manifest.yaml", m);
  return copy;
}

TEST(BadInput, ConfigYamlSyntax) {
  const std::string dir = test::temp_dir("bad_yaml");
  const std::string cfg = config_with(dir, "model:\n  d_model: [32\n  n_layer: 2\n");
  expect_rejected(str("train ", cfg, " --run-dir ", dir, "/run"), {cfg, "YAML syntax"}, {dir});
}

TEST(BadInput, ConfigUnknownKeyWrongTypeOutOfRangeUnknownBlock) {
  const std::string dir = test::temp_dir("bad_keys");
  const std::string data = test::fortunes_dataset();
  const std::string base = base_yaml(data);
  struct Case {
    std::string yaml, field;
  };
  const std::vector<Case> cases = {
      {base + "  stepz: 3\n", "train.stepz"},
      {base + "optimizer:\n  lr: fast\n", "optimizer.lr"},
      {base + "optimizer:\n  lr: -1\n", "optimizer.lr"},
      {str("model:\n  n_layer: 0\n", "data:\n  dir: ", data, "\n"), "model.n_layer"},
      {str("model:\n  mixer: {type: frobnet}\n", "data:\n  dir: ", data, "\n"), "frobnet"},
      {str("modle:\n  n_layer: 2\n"), "modle"},
  };
  for (const auto& c : cases) {
    const std::string cfg = config_with(dir, c.yaml);
    expect_rejected(str("train ", cfg, " --run-dir ", dir, "/run"), {cfg, c.field}, {dir});
    EXPECT_FALSE(fs::exists(dir + "/run")) << c.yaml;
  }
  const std::string good = config_with(dir, base);
  expect_rejected(str("train ", good, " --run-dir ", dir, "/run --set train.steps=many"),
                  {"train.steps"}, {dir});
}

TEST(BadInput, UnknownSubcommandOrFlag) {
  expect_rejected("frobnicate", {"unknown subcommand \"frobnicate\"", "train", "prepare"}, {});
  const std::string dir = test::temp_dir("bad_flag");
  const std::string cfg = config_with(dir, base_yaml(test::fortunes_dataset()));
  expect_rejected(str("train ", cfg, " --frobnicate"), {"--frobnicate"}, {dir});
  std::string out;
  EXPECT_NE(test::run_herd("", &out), 0);
  EXPECT_NE(out.find("a subcommand is required (one of: info, config, runs, train"),
            std::string::npos)
      << out;
}

TEST(BadInput, Shards) {
  const std::string dir = test::temp_dir("bad_shards");
  const std::string data = dataset_copy(dir);
  const std::string cfg = config_with(dir, base_yaml(data));
  const std::string shard = data + "/train_000000.bin";
  const std::string good = read_text(shard);
  auto train_args = str("train ", cfg, " --run-dir ", dir, "/run");
  {  // wrong magic
    std::string bad = good;
    bad[0] = 'X';
    test::write_text(shard, bad);
    expect_rejected(train_args, {"train_000000.bin", "bad magic"}, {data});
  }
  {  // truncated
    test::write_text(shard, good.substr(0, good.size() / 2));
    expect_rejected(train_args, {"train_000000.bin"}, {data});
  }
  {  // every token 32767 >= vocab_size (512): the first batch read hits one
    std::string bad = good;
    for (size_t i = 1024; i + 1 < bad.size(); i += 2) {
      bad[i] = static_cast<char>(0xff);
      bad[i + 1] = static_cast<char>(0x7f);
    }
    test::write_text(shard, bad);
    expect_rejected(train_args, {"train_000000.bin", ">= vocab_size 512"}, {data});
  }
  EXPECT_FALSE(fs::exists(dir + "/run/checkpoints"));
}

TEST(BadInput, DatasetManifestAndTokenizer) {
  const std::string dir = test::temp_dir("bad_manifest");
  const std::string data = dataset_copy(dir);
  const std::string cfg = config_with(dir, base_yaml(data));
  const std::string manifest = data + "/manifest.yaml";
  const std::string good = read_text(manifest);
  auto train_args = str("train ", cfg, " --run-dir ", dir, "/run");
  test::write_text(manifest, good + "extra_key: 1\n");
  expect_rejected(train_args, {manifest, "extra_key"}, {data});
  test::write_text(manifest, "format: [herd\n");
  expect_rejected(train_args, {manifest, "YAML syntax"}, {data});
  std::string v = good;
  v.replace(v.find("vocab_size: 512"), 15, "vocab_size: -3");
  test::write_text(manifest, v);
  expect_rejected(train_args, {manifest, "vocab_size"}, {data});
  test::write_text(manifest, good);
  test::write_text(data + "/tokenizer.model", "not a sentencepiece model");
  expect_rejected(train_args, {"tokenizer.model"}, {data});
}

TEST(BadInput, Checkpoints) {
  const std::string dir = test::temp_dir("bad_ckpt");
  const std::string cfg = trust::tiny_yaml(dir, 2);
  ASSERT_EQ(test::run_herd(str("train ", cfg, " --run-dir ", dir, "/run")), 0);
  const std::string ck = dir + "/run/checkpoints/step_00000002";
  const std::string run = dir + "/run";
  // wrong model shape
  expect_rejected(str("train ", cfg, " --run-dir ", run,
                      " --resume auto --set model.n_layer=3 "
                      "--set train.steps=4"),
                  {"model.n_layer differs from the checkpoint's"}, {run});
  expect_rejected(str("eval ", cfg, " --checkpoint ", dir, "/nowhere"), {dir + "/nowhere"}, {run});
  // corrupt, truncated, missing file
  const std::string model = read_text(ck + "/model.pt");
  std::string flipped = model;
  for (size_t i = flipped.size() / 2; i < flipped.size() / 2 + 64; ++i) flipped[i] = ~flipped[i];
  test::write_text(ck + "/model.pt", flipped);
  expect_rejected(str("eval ", cfg, " --checkpoint ", ck), {ck, "model.pt: checksum", "corrupt"},
                  {run});
  test::write_text(ck + "/model.pt", model.substr(0, 100));
  expect_rejected(str("generate --checkpoint ", ck), {ck, "model.pt", "truncated"}, {run});
  test::write_text(ck + "/model.pt", model);
  fs::rename(ck + "/rng.pt", dir + "/rng.pt");
  expect_rejected(str("train ", cfg, " --run-dir ", run, " --resume ", ck, " --set train.steps=4"),
                  {ck, "rng.pt: missing"}, {run});
}

TEST(BadInput, TextInputsJsonlZstdGzip) {
  const std::string dir = test::temp_dir("bad_text");
  const std::string tok = test::fortunes_dataset() + "/tokenizer.model";
  struct Case {
    std::string file, bytes, expect;
  };
  const std::vector<Case> cases = {
      {"bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"unterminated}\n", "bad.jsonl:2"},
      {"bad.jsonl.zst", "definitely not zstd data", "bad.jsonl.zst"},
      {"bad.txt.gz", std::string("\x1f\x8b\x08\x00garbage", 12), "bad.txt.gz"},
  };
  for (const auto& c : cases) {
    test::write_text(dir + "/" + c.file, c.bytes);
    expect_rejected(str("prepare text --input ", dir, "/", c.file, " --tokenizer ", tok, " --out ",
                        dir, "/out"),
                    {c.expect}, {dir});
    EXPECT_FALSE(fs::exists(dir + "/out/manifest.yaml"));
  }
}

TEST(BadInput, Images) {
  const std::string dir = test::temp_dir("bad_images");
  test::write_text(dir + "/images.gz", "not an IDX file at all");
  test::write_text(dir + "/labels", "not an IDX file either");
  expect_rejected(str("prepare images --idx-train-images ", dir, "/images.gz --idx-train-labels ",
                      dir, "/labels --out ", dir, "/out"),
                  {"images.gz"}, {dir});
  EXPECT_FALSE(fs::exists(dir + "/out/manifest.yaml"));
}

}  // namespace
}  // namespace herd
