// Dataset blending: MixtureLoader's proportions, per-source order and epochs, resume, rank
// slices and refusals; and the data.mix config section.
#include <gtest/gtest.h>

#include "config/config.h"
#include "data/text/loader.h"
#include "data/text/mixture.h"
#include "data/text/prepare.h"
#include "data/text/tokenizer.h"
#include "fixtures.h"
#include "test_data_util.h"

namespace {

using namespace herd::data;
using namespace herd::data::testing_util;

const std::string kFortunes = "/usr/share/games/fortunes/";
constexpr int64_t kSeqLen = 32;

class Mixture : public testing::Test {
 protected:
  void SetUp() override {
    if (!is_regular_file(kFortunes + "goedel")) GTEST_SKIP() << "fortunes not installed";
  }
  // Source 0: the shared fortunes dataset (thousands of samples).
  static const DatasetManifest& big() {
    static const DatasetManifest m = load_manifest(herd::test::fortunes_dataset());
    return m;
  }
  // Source 1: a small one with the same tokenizer (about a hundred samples, so that it
  // rolls through several epochs while the big one is still in its first).
  static const DatasetManifest& small() {
    static ScratchDir dir("mix_small");
    static const DatasetManifest m = [] {
      PrepareOptions o;
      o.inputs = {kFortunes + "goedel"};
      o.doc_delimiter = "%";
      o.tokenizer = herd::test::fortunes_dataset() + "/tokenizer.model";
      o.out_dir = dir.path();
      o.val_fraction = 0.1;
      return prepare_text(o);
    }();
    return m;
  }
  static std::vector<DatasetManifest> both() { return {big(), small()}; }
};

// Rows of a [B, T] input + target pair as [B, T + 1] token rows.
torch::Tensor rows_of(const Batch& b) {
  return torch::cat({b.input, b.target.narrow(1, b.target.size(1) - 1, 1)}, 1);
}

TEST_F(Mixture, ProportionsFollowWeightsAtEveryPrefix) {
  MixtureLoader mix(both(), {0.7, 0.3}, kSeqLen, 5);
  ASSERT_LT(TrainLoader(small(), kSeqLen, 6).num_samples(), 150u);  // so 300 draws span epochs
  EXPECT_EQ(mix.num_samples(), TrainLoader(big(), kSeqLen, 0).num_samples() +
                                   TrainLoader(small(), kSeqLen, 0).num_samples());
  EXPECT_EQ(mix.num_tokens(), big().train_tokens() + small().train_tokens());
  // SWRR keeps each source within two samples of its share after every slot (measured: about
  // one), so over 1000 samples the counts are 700 and 300 up to that, not up to the ~15 of
  // independent draws.
  uint64_t counts[2] = {0, 0};
  uint64_t g = 0;
  for (int step = 0; step < 100; ++step) {
    mix.next_batch(10);
    ASSERT_EQ(mix.last_sources().size(), 10u);
    for (uint32_t s : mix.last_sources()) {
      ++counts[s];
      ++g;
      EXPECT_LT(std::abs(static_cast<double>(counts[0]) - 0.7 * static_cast<double>(g)), 2.0)
          << "after " << g << " samples";
    }
  }
  EXPECT_EQ(counts[0] + counts[1], 1000u);
  EXPECT_NEAR(static_cast<double>(counts[0]), 700.0, 2.0);
  EXPECT_EQ(mix.drawn(0), counts[0]);
  EXPECT_EQ(mix.drawn(1), counts[1]);

  // Three sources with uneven weights: each within two of its share after 999 samples.
  MixtureLoader three({big(), small(), big()}, {5, 1, 2}, kSeqLen, 5);
  for (int step = 0; step < 333; ++step) three.next_batch(3);
  EXPECT_NEAR(static_cast<double>(three.drawn(0)), 999.0 * 5 / 8, 2.0);
  EXPECT_NEAR(static_cast<double>(three.drawn(1)), 999.0 * 1 / 8, 2.0);
  EXPECT_NEAR(static_cast<double>(three.drawn(2)), 999.0 * 2 / 8, 2.0);
}

TEST_F(Mixture, EachSourceKeepsItsOwnOrderAndEpochs) {
  const uint64_t seed = 9;
  MixtureLoader mix(both(), {0.7, 0.3}, kSeqLen, seed);
  std::vector<torch::Tensor> per_source[2];
  for (int step = 0; step < 100; ++step) {
    auto rows = rows_of(mix.next_batch(8));
    for (int64_t j = 0; j < 8; ++j) per_source[mix.last_sources()[j]].push_back(rows[j]);
  }
  // Source s's rows, in order, are exactly what a lone TrainLoader(seed + s) gives.
  const DatasetManifest* ms[2] = {&big(), &small()};
  for (int s = 0; s < 2; ++s) {
    TrainLoader alone(*ms[s], kSeqLen, seed + s);
    auto expected = rows_of(alone.next_batch(static_cast<int64_t>(per_source[s].size())));
    EXPECT_TRUE(torch::equal(torch::stack(per_source[s]), expected)) << "source " << s;
    EXPECT_EQ(mix.drawn(s), per_source[s].size());
  }
  // The small source went round several epochs; the big one is still in its first.
  TrainLoader small_alone(small(), kSeqLen, seed + 1);
  EXPECT_GT(mix.drawn(1), 2 * small_alone.num_samples());
  EXPECT_LT(mix.drawn(0), TrainLoader(big(), kSeqLen, seed).num_samples());
  EXPECT_NE(mix.state().find("drawn=" + std::to_string(mix.drawn(0)) + "," +
                             std::to_string(mix.drawn(1))),
            std::string::npos)
      << mix.state();

  // One source with weight 1 is a TrainLoader.
  MixtureLoader single({big()}, {1.0}, kSeqLen, seed);
  TrainLoader plain(big(), kSeqLen, seed);
  for (int step = 0; step < 3; ++step)
    EXPECT_TRUE(torch::equal(rows_of(single.next_batch(16)), rows_of(plain.next_batch(16))));
}

TEST_F(Mixture, DeterministicAndResumable) {
  MixtureLoader a(both(), {0.7, 0.3}, kSeqLen, 3), b(both(), {0.7, 0.3}, kSeqLen, 3);
  for (int step = 0; step < 7; ++step) {
    auto x = a.next_batch(12), y = b.next_batch(12);
    ASSERT_TRUE(torch::equal(x.input, y.input));
    ASSERT_TRUE(torch::equal(x.target, y.target));
  }
  const std::string saved = a.state();
  EXPECT_EQ(saved.find('\n'), std::string::npos);
  EXPECT_EQ(saved.rfind("mixture=1 seed=3 weights=", 0), 0u) << saved;

  // A fresh loader restored from the state continues exactly where `a` goes on.
  MixtureLoader resumed(both(), {0.7, 0.3}, kSeqLen, 1234);  // the state carries the seed
  resumed.restore(saved);
  EXPECT_EQ(resumed.state(), saved);
  for (int step = 0; step < 40; ++step) {  // long enough for the small source to roll over
    auto x = a.next_batch(12), y = resumed.next_batch(12);
    ASSERT_TRUE(torch::equal(x.input, y.input)) << "step " << step;
    ASSERT_TRUE(torch::equal(x.target, y.target)) << "step " << step;
  }
  EXPECT_EQ(resumed.state(), a.state());

  // Another seed gives other batches.
  MixtureLoader other(both(), {0.7, 0.3}, kSeqLen, 4);
  MixtureLoader again(both(), {0.7, 0.3}, kSeqLen, 3);
  EXPECT_FALSE(torch::equal(other.next_batch(12).input, again.next_batch(12).input));
}

TEST_F(Mixture, RankSlicesAreRowsOfTheGlobalBatch) {
  const int64_t B = 12;
  MixtureLoader whole(both(), {0.6, 0.4}, kSeqLen, 8);
  std::vector<MixtureLoader> ranks2, ranks4;
  for (int r = 0; r < 2; ++r)
    ranks2.emplace_back(both(), std::vector<double>{0.6, 0.4}, kSeqLen, 8);
  for (int r = 0; r < 4; ++r)
    ranks4.emplace_back(both(), std::vector<double>{0.6, 0.4}, kSeqLen, 8);
  for (int step = 0; step < 30; ++step) {
    auto global = rows_of(whole.next_batch(B));
    for (int r = 0; r < 2; ++r) {
      auto part = rows_of(ranks2[r].next_batch(B, r, 2));
      ASSERT_TRUE(torch::equal(part, global.narrow(0, r * 6, 6)))
          << "step " << step << " rank " << r;
    }
    for (int r = 0; r < 4; ++r) {
      auto part = rows_of(ranks4[r].next_batch(B, r, 4));
      ASSERT_TRUE(torch::equal(part, global.narrow(0, r * 3, 3)))
          << "step " << step << " rank " << r;
    }
  }
  for (auto& r : ranks2) EXPECT_EQ(r.state(), whole.state());
  for (auto& r : ranks4) EXPECT_EQ(r.state(), whole.state());
  EXPECT_NE(error_of([&] { whole.next_batch(10, 0, 4); }).find("does not divide by world size 4"),
            std::string::npos);
}

TEST_F(Mixture, RefusesWhatDoesNotFit) {
  // A dataset tokenized with another tokenizer.
  static ScratchDir dir("mix_other_tok");
  TokenizerTrainOptions topt;
  topt.source.doc_delimiter = "%";
  train_tokenizer({kFortunes + "goedel", kFortunes + "kids"}, 400, "bpe", dir / "tok", topt);
  PrepareOptions o;
  o.inputs = {kFortunes + "kids"};
  o.doc_delimiter = "%";
  o.tokenizer = dir / "tok.model";
  o.out_dir = dir / "kids";
  auto other = prepare_text(o);
  auto msg = error_of([&] { MixtureLoader({big(), other}, {1, 1}, kSeqLen, 1); });
  EXPECT_NE(msg.find("data.mix: " + other.manifest_path() + " was tokenized with tokenizer " +
                     other.tokenizer_identity + " (vocab 400) but " + big().manifest_path()),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("must share one tokenizer"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);

  EXPECT_NE(error_of([&] {
              MixtureLoader(both(), {1, 0}, kSeqLen, 1);
            }).find("expected a finite number > 0"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { MixtureLoader(both(), {1}, kSeqLen, 1); }).find("1 weights for 2 datasets"),
      std::string::npos);

  // States that do not fit: another source count, other weights, another seq_len (sample
  // counts), a single-dataset TrainLoader state, junk.
  MixtureLoader mix(both(), {0.7, 0.3}, kSeqLen, 1);
  mix.next_batch(4);
  const std::string state = mix.state();
  MixtureLoader three({big(), small(), big()}, {1, 1, 1}, kSeqLen, 1);
  EXPECT_NE(error_of([&] { three.restore(state); }).find("2 sources but data.mix lists 3"),
            std::string::npos);
  MixtureLoader reweighted(both(), {0.5, 0.5}, kSeqLen, 1);
  EXPECT_NE(error_of([&] { reweighted.restore(state); }).find("weights cannot change on resume"),
            std::string::npos);
  MixtureLoader longer(both(), {0.7, 0.3}, 2 * kSeqLen, 1);
  EXPECT_NE(error_of([&] { longer.restore(state); }).find("a different dataset or seq_len?"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { mix.restore("epoch=0 next_sample=3 seed=1"); }).find("unknown key epoch"),
      std::string::npos);
  EXPECT_NE(error_of([&] { mix.restore("mixture=1 seed=1"); }).find("expected mixture=1 seed=N"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mix.restore(state + "x"); }).find("expected comma-separated"),
            std::string::npos);
  EXPECT_EQ(mix.state(), state);  // failed restores leave the loader as it was
}

// data.mix in the config: parsed, validated with file:line, exclusive with data.dir.
std::string config_error(const std::string& yaml) {
  const std::string path = herd::test::temp_dir("mixcfg") + "/cfg.yaml";
  herd::test::write_text(path, yaml);
  try {
    herd::load_config(path);
  } catch (const herd::Error& e) {
    std::string msg = e.what();
    return msg.substr(msg.find("cfg.yaml"));
  }
  return "no error";
}

TEST(MixtureConfig, ParsesAndValidates) {
  const std::string path = herd::test::temp_dir("mixcfg") + "/cfg.yaml";
  herd::test::write_text(path,
                         "data:\n  mix:\n    - {dir: /data/pile, weight: 0.7}\n"
                         "    - {dir: /data/c4, weight: 0.3}\n");
  auto cfg = herd::load_config(path);
  ASSERT_EQ(cfg.data.mix.size(), 2u);
  EXPECT_EQ(cfg.data.mix[0].dir, "/data/pile");
  EXPECT_EQ(cfg.data.mix[1].weight, 0.3);
  EXPECT_TRUE(cfg.data.dir.empty());
  EXPECT_EQ(cfg.resolved["data"]["mix"][1]["dir"].as<std::string>(), "/data/c4");
  // Single-dataset configs resolve without the key.
  herd::test::write_text(path, "data:\n  dir: /data/x\n");
  EXPECT_FALSE(herd::load_config(path).resolved["data"]["mix"].IsDefined());

  EXPECT_EQ(config_error("data:\n  dir: /a\n  mix:\n    - {dir: /b, weight: 1}\n"),
            "cfg.yaml:4 data.mix: data.dir and data.mix are exclusive (use one of them)");
  EXPECT_EQ(config_error("data:\n  mix:\n    - {dir: /b, weight: 0}\n"),
            "cfg.yaml:3 data.mix[0].weight: must be > 0, got 0");
  EXPECT_EQ(config_error("data:\n  mix:\n    - {dir: /b}\n"),
            "cfg.yaml:3 data.mix[0].weight: required number > 0 is missing");
  EXPECT_EQ(config_error("data:\n  mix:\n    - {weight: 2}\n"),
            "cfg.yaml:3 data.mix[0].dir: required string is missing");
  EXPECT_EQ(config_error("data:\n  mix:\n    - {dir: '', weight: 2}\n"),
            "cfg.yaml:3 data.mix[0].dir: empty path (expected a prepared dataset directory)");
  EXPECT_EQ(config_error("data:\n  mix:\n    - {dir: /b, weight: 1}\n    - {dir: /b, weight: 2}\n"),
            "cfg.yaml:4 data.mix[1].dir: \"/b\" is listed twice (merge the weights)");
  EXPECT_EQ(config_error("data:\n  mix:\n    - {dir: /b, weight: 1, wieght: 2}\n")
                .rfind("cfg.yaml:3 data.mix[0].wieght: unknown key", 0),
            0u);
  EXPECT_EQ(config_error("data:\n  mix: []\n").rfind("cfg.yaml:2 data.mix: empty list", 0), 0u)
      << config_error("data:\n  mix: []\n");
  EXPECT_NE(config_error("data:\n  mix: /a\n").find("data.mix: expected a list of mappings"),
            std::string::npos);
}

}  // namespace
