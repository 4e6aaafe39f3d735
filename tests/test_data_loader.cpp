// Train/val loaders over a synthetic dataset whose token at stream position p is p, so every
// sample names itself: sample s starts with token s * T.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "data/text/loader.h"
#include "data/text/manifest.h"
#include "test_data_util.h"

namespace {

using namespace herd::data::testing_util;

using namespace herd::data;

constexpr int64_t T = 16;

// Train: 10001 tokens in shards of 3000, 4001, 3000 (625 samples of 17 tokens at stride 16).
// Val: 100 tokens (6 samples).
DatasetManifest make_dataset(const std::string& dir) {
  DatasetManifest m;
  m.dir = dir;
  m.tokenizer_path = "/nonexistent/tok.model";
  m.tokenizer_identity = "0123456789abcdef";
  m.vocab_size = 65536;
  m.eos_id = 3;
  m.dtype = TokenDtype::u16;
  m.seed = 7;
  m.val_fraction = 0.1;
  m.inputs = {"a.txt", "b.jsonl"};
  m.doc_delimiter = "%";
  m.train_documents = 12;
  m.val_documents = 2;
  int next = 0;
  auto add = [&](std::vector<ShardEntry>* list, const char* file, int n) {
    std::vector<int> ids(n);
    for (int& id : ids) id = next++;
    write_shard(m.dir + "/" + file, m.dtype, ids);
    list->push_back(ShardEntry{file, static_cast<uint64_t>(n)});
  };
  add(&m.train_shards, "train_000000.bin", 3000);
  add(&m.train_shards, "train_000001.bin", 4001);
  add(&m.train_shards, "train_000002.bin", 3000);
  next = 20000;
  add(&m.val_shards, "val_000000.bin", 100);
  save_manifest(m);
  return m;
}

std::vector<int64_t> sample_ids(const Batch& b) {
  std::vector<int64_t> ids;
  for (int64_t r = 0; r < b.input.size(0); ++r) ids.push_back(b.input[r][0].item<int64_t>() / T);
  return ids;
}

TEST(Loader, BatchesFollowTheStreamLayout) {
  ScratchDir scratch("layout");
  auto m = load_manifest(make_dataset(scratch.path()).dir);
  TrainLoader loader(m, T, 1337);
  EXPECT_EQ(loader.num_samples(), 625u);
  for (int step = 0; step < 30; ++step) {
    Batch b = loader.next_batch(8);
    ASSERT_EQ(b.input.sizes(), (std::vector<int64_t>{8, T}));
    ASSERT_EQ(b.target.sizes(), (std::vector<int64_t>{8, T}));
    ASSERT_EQ(b.input.scalar_type(), torch::kInt64);
    for (int64_t r = 0; r < 8; ++r) {
      int64_t start = b.input[r][0].item<int64_t>();
      ASSERT_EQ(start % T, 0);
      auto expected = torch::arange(start, start + T, torch::kInt64);
      ASSERT_TRUE(torch::equal(b.input[r], expected));
      ASSERT_TRUE(torch::equal(b.target[r], expected + 1));
    }
  }
}

TEST(Loader, SameSeedSameBatchesDifferentSeedDifferent) {
  ScratchDir scratch("seed");
  auto m = make_dataset(scratch.path());
  TrainLoader a(m, T, 1), b(m, T, 1), c(m, T, 2);
  bool differs = false;
  for (int i = 0; i < 5; ++i) {
    Batch x = a.next_batch(4), y = b.next_batch(4), z = c.next_batch(4);
    EXPECT_TRUE(torch::equal(x.input, y.input));
    EXPECT_TRUE(torch::equal(x.target, y.target));
    differs = differs || !torch::equal(x.input, z.input);
  }
  EXPECT_TRUE(differs);
}

TEST(Loader, EverySampleOncePerEpoch) {
  ScratchDir scratch("epoch");
  auto m = make_dataset(scratch.path());
  TrainLoader loader(m, T, 99);
  // 24 does not divide 625: batches straddle epoch ends and the count must still be exact.
  std::vector<int64_t> seen;
  while (seen.size() < 3 * 625) {
    auto ids = sample_ids(loader.next_batch(24));
    seen.insert(seen.end(), ids.begin(), ids.end());
  }
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> epoch(seen.begin() + e * 625, seen.begin() + (e + 1) * 625);
    epochs.push_back(epoch);
    std::sort(epoch.begin(), epoch.end());
    for (int64_t i = 0; i < 625; ++i) ASSERT_EQ(epoch[i], i) << "epoch " << e;
  }
  EXPECT_NE(epochs[0], epochs[1]);  // each epoch has its own order
  EXPECT_EQ(loader.state().epoch, seen.size() / 625);
  EXPECT_EQ(loader.state().next_sample, seen.size() % 625);
}

TEST(Loader, PermutationIsPinned) {
  // Fixed by splitmix64 + Fisher-Yates, not by the standard library: the same on every
  // platform. A change here changes every run's data order.
  EXPECT_EQ(epoch_permutation(10, 1337, 0), (std::vector<uint64_t>{0, 2, 1, 6, 8, 4, 7, 5, 3, 9}));
  EXPECT_EQ(epoch_permutation(10, 1337, 1), (std::vector<uint64_t>{1, 6, 5, 9, 0, 2, 8, 3, 7, 4}));
  EXPECT_EQ(epoch_permutation(1, 5, 0), std::vector<uint64_t>{0});
  EXPECT_TRUE(epoch_permutation(0, 5, 0).empty());
}

TEST(Loader, ResumeGivesTheUninterruptedBatches) {
  ScratchDir scratch("resume");
  auto m = make_dataset(scratch.path());
  TrainLoader full(m, T, 4242);
  std::vector<Batch> expected;
  LoaderState saved;
  for (int i = 0; i < 200; ++i) {  // 200 * 7 samples: more than two epochs
    if (i == 150) saved = full.state();
    expected.push_back(full.next_batch(7));
  }
  EXPECT_EQ(saved.epoch, 1u);  // 150 * 7 = 1050 = 625 + 425
  EXPECT_EQ(saved.next_sample, 425u);
  EXPECT_EQ(saved.seed, 4242u);

  // Through both serialised forms, into loaders built with another seed.
  LoaderState from_text = LoaderState::from_string(saved.to_string());
  LoaderState from_tensor = LoaderState::from_tensor(saved.to_tensor());
  EXPECT_EQ(from_text, saved);
  EXPECT_EQ(from_tensor, saved);
  TrainLoader resumed(m, T, 1);
  resumed.restore(from_tensor);
  for (int i = 150; i < 200; ++i) {
    Batch b = resumed.next_batch(7);
    ASSERT_TRUE(torch::equal(b.input, expected[i].input)) << "batch " << i;
    ASSERT_TRUE(torch::equal(b.target, expected[i].target)) << "batch " << i;
  }
  EXPECT_EQ(resumed.state(), full.state());
}

TEST(Loader, RankSlicesPartitionTheGlobalBatch) {
  ScratchDir scratch("ranks");
  auto m = make_dataset(scratch.path());
  const int world = 4, B = 12;
  TrainLoader single(m, T, 5);
  std::vector<TrainLoader> ranks;
  for (int r = 0; r < world; ++r) ranks.emplace_back(m, T, 5);
  for (int step = 0; step < 120; ++step) {  // crosses two epoch ends
    Batch all = single.next_batch(B);
    std::vector<torch::Tensor> inputs, targets;
    std::set<int64_t> distinct;
    for (int r = 0; r < world; ++r) {
      Batch part = ranks[r].next_batch(B, r, world);
      ASSERT_EQ(part.input.size(0), B / world);
      for (int64_t id : sample_ids(part)) distinct.insert(id);
      inputs.push_back(part.input);
      targets.push_back(part.target);
      ASSERT_EQ(ranks[r].state(), single.state());
    }
    EXPECT_EQ(distinct.size(), static_cast<size_t>(B));  // disjoint
    ASSERT_TRUE(torch::equal(torch::cat(inputs), all.input));
    ASSERT_TRUE(torch::equal(torch::cat(targets), all.target));
  }
  EXPECT_NE(error_of([&] { single.next_batch(10, 0, 4); }).find("does not divide"),
            std::string::npos);
  EXPECT_THROW(single.next_batch(8, 4, 4), herd::Error);
}

TEST(Loader, ValLoaderIsSequentialAndResets) {
  ScratchDir scratch("val");
  auto m = make_dataset(scratch.path());
  ValLoader val(m, T);
  ASSERT_EQ(val.num_samples(), 6u);  // (100 - 1) / 16
  auto first = val.next_batch(4);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(sample_ids(*first), (std::vector<int64_t>{1250, 1251, 1252, 1253}));  // 20000 / 16
  EXPECT_TRUE(torch::equal(first->target, first->input + 1));
  auto second = val.next_batch(4);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->input.size(0), 2);  // the short last batch
  EXPECT_FALSE(val.next_batch(4).has_value());
  val.reset();
  auto again = val.next_batch(4);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(torch::equal(again->input, first->input));

  // Ranks split each (possibly short) batch without overlap.
  val.reset();
  val.next_batch(4);
  ValLoader r0(m, T), r1(m, T);
  r0.next_batch(4, 0, 2);
  r1.next_batch(4, 1, 2);
  auto a = r0.next_batch(4, 0, 2), b = r1.next_batch(4, 1, 2);
  EXPECT_TRUE(torch::equal(torch::cat({a->input, b->input}), second->input));
}

TEST(Loader, StateErrors) {
  ScratchDir scratch("state");
  auto m = make_dataset(scratch.path());
  TrainLoader loader(m, T, 1);
  EXPECT_NE(error_of([&] {
              loader.restore(LoaderState{0, 625, 1});
            }).find("next_sample beyond"),
            std::string::npos);
  EXPECT_THROW(LoaderState::from_string("epoch=1 next_sample=2"), herd::Error);
  EXPECT_THROW(LoaderState::from_string("epoch=1 next_sample=-2 seed=3"), herd::Error);
  EXPECT_THROW(LoaderState::from_string("epoch=1 next_sample=2 seed=3 extra=4"), herd::Error);
  EXPECT_THROW(LoaderState::from_tensor(torch::zeros({4}, torch::kInt64)), herd::Error);
  EXPECT_THROW(LoaderState::from_tensor(torch::zeros({3}, torch::kInt64)), herd::Error);
  LoaderState big{3, 4, ~0ULL};
  EXPECT_EQ(LoaderState::from_tensor(big.to_tensor()), big);
  EXPECT_EQ(LoaderState::from_string(big.to_string()), big);
  EXPECT_NE(error_of([&] { TrainLoader(m, 10001, 1); }).find("train split has 10001 tokens"),
            std::string::npos);
}

TEST(DataManifest, RoundTripAndValidation) {
  ScratchDir scratch("manifest");
  auto m = make_dataset(scratch.path());
  auto loaded = load_manifest(m.dir);
  EXPECT_EQ(manifest_to_yaml(loaded), manifest_to_yaml(m));
  EXPECT_EQ(loaded.vocab_size, 65536);
  EXPECT_EQ(loaded.eos_id, 3);
  EXPECT_EQ(loaded.tokenizer_path, "/nonexistent/tok.model");
  EXPECT_EQ(loaded.tokenizer_identity, "0123456789abcdef");
  EXPECT_EQ(loaded.train_tokens(), 10001u);
  EXPECT_EQ(loaded.val_shards.size(), 1u);
  EXPECT_EQ(loaded.doc_delimiter, "%");

  const std::string file = m.dir + "/manifest.yaml";
  const std::string text = manifest_to_yaml(m);
  auto broken = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    t.replace(at, from.size(), to);
    std::ofstream(file, std::ios::trunc) << t;
    return error_of([&] { load_manifest(m.dir); });
  };
  auto msg = broken("format: herd-dataset", "format: something");
  EXPECT_NE(msg.find("manifest.yaml:1 format"), std::string::npos) << msg;
  msg = broken("version: 1", "version: 9");
  EXPECT_NE(msg.find("version: 9 (this herd reads version 1)"), std::string::npos) << msg;
  msg = broken("eos_id: 3", "eos_id: 70000");
  EXPECT_NE(msg.find("eos_id"), std::string::npos) << msg;
  msg = broken("train: 10001", "train: 10000");
  EXPECT_NE(msg.find("tokens.train"), std::string::npos) << msg;
  msg = broken("file: train_000001.bin", "file: ../x.bin");
  EXPECT_NE(msg.find("expected a file name inside the dataset dir"), std::string::npos) << msg;
  msg = broken("token_dtype: uint16", "token_dtype: int8");
  EXPECT_NE(msg.find("expected uint16 or uint32"), std::string::npos) << msg;
  msg = broken("vocab_size: 65536", "vocab_size: [");
  EXPECT_NE(msg.find("YAML syntax error"), std::string::npos) << msg;
  for (const auto& s : {msg}) EXPECT_EQ(s.find('\n'), std::string::npos);

  // Shard on disk disagreeing with the manifest.
  std::ofstream(file, std::ios::trunc) << text;
  write_shard(m.dir + "/train_000001.bin", TokenDtype::u16, {1, 2, 3});
  msg = error_of([&] { TrainLoader(load_manifest(m.dir), T, 1); });
  EXPECT_NE(msg.find("shard train_000001.bin: 3 tokens but"), std::string::npos) << msg;

  ::unlink(file.c_str());
  msg = error_of([&] { load_manifest(m.dir); });
  EXPECT_NE(msg.find("manifest.yaml: no dataset manifest"), std::string::npos) << msg;
}

}  // namespace
