// data.dir as a folder of llm.c shards (no manifest), and manifests that must be refused.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "data/text/manifest.h"
#include "data/text/shard.h"
#include "fixtures.h"

namespace herd {
namespace {
namespace fs = std::filesystem;

std::vector<int> random_tokens(size_t n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int> ids(n);
  for (auto& id : ids) id = static_cast<int>(rng() % static_cast<unsigned>(vocab));
  return ids;
}

// As llm.c's data scripts write them: <name>_train_NNNNNN.bin and <name>_val_NNNNNN.bin.
std::string llmc_folder(const std::string& dir) {
  const std::string data = dir + "/shards";
  fs::create_directories(data);
  data::write_shard(data + "/tiny_val_000000.bin", data::TokenDtype::u16,
                    random_tokens(3000, 300, 1));
  data::write_shard(data + "/tiny_train_000001.bin", data::TokenDtype::u16,
                    random_tokens(6000, 300, 2));
  // A second width in the same folder: each shard's header says how wide its tokens are.
  data::write_shard(data + "/tiny_train_000002.bin", data::TokenDtype::u32,
                    random_tokens(5000, 300, 3));
  test::write_text(data + "/README.txt", "not a shard");
  return data;
}

std::string tiny_train(const std::string& data, const std::string& extra) {
  return "train " + std::string(HERD_SOURCE_DIR) +
         "/configs/tiny-debug.yaml --set data.dir=" + data +
         " --set train.steps=3 --set train.eval_batches=1 --set model.d_model=16"
         " --set model.max_seq_len=16 --set train.sample_tokens=8 " +
         extra;
}

TEST(LlmcFolder, ShardsAreFoundByNameWithTheirOwnWidths) {
  const std::string data = llmc_folder(test::temp_dir("llmc"));
  const auto m = data::load_dataset(data);
  EXPECT_TRUE(data::is_llmc_folder(m));
  ASSERT_EQ(m.train_shards.size(), 2u);
  EXPECT_EQ(m.train_shards[0].file, "tiny_train_000001.bin");
  EXPECT_EQ(m.train_tokens(), 11000u);
  EXPECT_EQ(m.val_tokens(), 3000u);
  EXPECT_EQ(m.vocab_size, 0);
  EXPECT_TRUE(m.tokenizer_path.empty());
  EXPECT_EQ(data::load_dataset(data).tokenizer_identity, m.tokenizer_identity);  // stable
  const std::string empty = test::temp_dir("llmc-empty");
  EXPECT_THROW(data::load_dataset(empty), Error);
}

TEST(LlmcFolder, TrainsAndEvaluatesWithoutTokenizerAndSkipsSampling) {
  const std::string dir = test::temp_dir("llmc");
  const std::string data = llmc_folder(dir);
  std::string out;
  EXPECT_NE(test::run_herd(tiny_train(data, "--run-dir " + dir + "/a"), &out), 0);
  EXPECT_NE(out.find("model.vocab_size: required for " + data), std::string::npos) << out;
  ASSERT_EQ(
      test::run_herd(tiny_train(data, "--set model.vocab_size=300 --run-dir " + dir + "/b"), &out),
      0)
      << out;
  EXPECT_NE(out.find("sampling skipped: " + data + " is a folder of llm.c shards"),
            std::string::npos)
      << out;
  std::ifstream metrics(dir + "/b/metrics.jsonl");
  std::string all((std::istreambuf_iterator<char>(metrics)), {});
  EXPECT_NE(all.find("\"val_loss\":"), std::string::npos) << all;
  // Tokens outside the vocabulary the config names are refused with the shard's name.
  EXPECT_NE(
      test::run_herd(tiny_train(data, "--set model.vocab_size=100 --run-dir " + dir + "/c"), &out),
      0);
  EXPECT_NE(out.find(">= vocab_size 100"), std::string::npos) << out;
}

TEST(LlmcFolder, ManifestWithTooSmallATokenizerIsRefusedUpFront) {
  const std::string dir = test::temp_dir("llmc");
  const std::string data = dir + "/fortunes";
  fs::copy(test::fortunes_dataset(), data);
  std::ifstream in(data + "/manifest.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  in.close();
  const auto at = text.find("vocab_size: 512");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 15, "vocab_size: 600");
  test::write_text(data + "/manifest.yaml", text);
  std::string out;
  EXPECT_NE(test::run_herd(tiny_train(data, "--run-dir " + dir + "/r"), &out), 0);
  EXPECT_NE(out.find("vocab_size: 600 exceeds the vocabulary of its tokenizer"), std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(dir + "/r/metrics.jsonl")) << "it started training";
}

// `herd prepare text` writes what llm.c's loaders read: *train*/*val* names, a 256-int32
// header (magic 20240520, version 1, count) and the uint16 tokens; without its manifest the
// folder loads as llm.c shards with the same tokens.
TEST(LlmcFolder, PreparedTextIsAnLlmcFolder) {
  const auto m = data::load_manifest(test::fortunes_dataset());
  for (const auto* list : {&m.train_shards, &m.val_shards})
    for (const auto& e : *list) {
      std::ifstream f(m.shard_path(e), std::ios::binary);
      int32_t header[256];
      f.read(reinterpret_cast<char*>(header), sizeof header);
      EXPECT_EQ(header[0], 20240520) << e.file;
      EXPECT_EQ(header[1], 1) << e.file;
      EXPECT_EQ(static_cast<uint64_t>(header[2]), e.tokens) << e.file;
      EXPECT_EQ(fs::file_size(m.shard_path(e)), 1024 + 2 * e.tokens) << e.file;
    }
  const std::string copy = test::temp_dir("llmc") + "/shards";
  fs::create_directories(copy);
  for (const auto& e : m.train_shards) fs::copy(m.shard_path(e), copy + "/" + e.file);
  for (const auto& e : m.val_shards) fs::copy(m.shard_path(e), copy + "/" + e.file);
  const auto as_llmc = data::load_dataset(copy);
  EXPECT_EQ(as_llmc.train_tokens(), m.train_tokens());
  EXPECT_EQ(as_llmc.val_tokens(), m.val_tokens());
}

}  // namespace
}  // namespace herd
