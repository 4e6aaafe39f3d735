// Synthetic tasks (src/data/synthetic/): each generator's structure against its reference's
// definition (safari's synthetics.py for recall and induction, zoology's multiquery_ar.py for
// mqar; passkey's own), the example sets (determinism, safari's distinct examples, masks),
// resume through the loader state, and the answer accuracy.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "core/error.h"
#include "data/synthetic/generator.h"
#include "data/synthetic/score.h"
#include "data/synthetic/spec.h"
#include "data/synthetic/synthetic_data.h"

namespace herd::data::synthetic {
namespace {

SyntheticConfig spec(const std::string& task, int64_t vocab, int64_t len) {
  SyntheticConfig s;
  s.task = task;
  s.vocab_size = vocab;
  s.seq_len = len;
  s.train_examples = 300;
  s.test_examples = 100;
  return s;
}

std::vector<int64_t> row(const torch::Tensor& t, int64_t r) {
  auto c = t[r].contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// safari's Vocab: str(0..n-1) plus "=>" and ".", sorted as strings. Its ids are what herd
// uses: "." 0, ordinary tokens 1..n in string order, "=>" n+1; keys the first half of the
// ordinary tokens (ids 1..n/2), values the rest.
TEST(SyntheticSafari, VocabularyIdsAreTheStringSortedOnes) {
  for (int64_t vocab : {12, 20, 21, 30}) {
    const int64_t n = vocab - 2;
    std::vector<std::string> words;
    for (int64_t i = 0; i < n; ++i) words.push_back(std::to_string(i));
    std::vector<std::string> ordinary = words;
    std::sort(ordinary.begin(), ordinary.end());
    words.push_back("=>");
    words.push_back(".");
    std::sort(words.begin(), words.end());
    EXPECT_EQ(words.front(), ".");
    EXPECT_EQ(words.back(), "=>");
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(words[static_cast<size_t>(i + 1)], ordinary[static_cast<size_t>(i)]);
  }
}

TEST(SyntheticSafari, AssociativeRecallStructure) {
  for (int64_t vocab : {20, 21}) {
    const auto s = spec("associative_recall", vocab, 40);
    SyntheticData data(s, 7);
    const int64_t n = vocab - 2, keys = n / 2, T = 42;
    ASSERT_EQ(data.row_len(), T);
    const auto b = data.test_batch(0, 100);
    ASSERT_EQ(b.input.sizes(), (std::vector<int64_t>{100, T}));
    bool maps_differ = false;
    std::vector<int64_t> first_value_of_key1;
    for (int64_t r = 0; r < 100; ++r) {
      const auto in = row(b.input, r), tg = row(b.target, r);
      const auto ans = b.answer[r];
      std::map<int64_t, int64_t> value_of;
      for (int64_t t = 0; t < 40; t += 2) {
        const int64_t k = in[static_cast<size_t>(t)], v = in[static_cast<size_t>(t + 1)];
        ASSERT_GE(k, 1);
        ASSERT_LE(k, keys);
        ASSERT_GT(v, keys);
        ASSERT_LE(v, n);
        if (value_of.count(k)) {
          ASSERT_EQ(value_of[k], v) << "one map per example";
        }
        value_of[k] = v;
      }
      ASSERT_EQ(in[40], vocab - 1) << "=> before the query";
      const int64_t query = in[41];
      ASSERT_TRUE(value_of.count(query)) << "the query key is in the context (allow_dot False)";
      EXPECT_EQ(tg[41], value_of[query]);
      EXPECT_TRUE(ans[41].item<bool>());
      EXPECT_EQ(ans.sum().item<int64_t>(), 1);
      for (int64_t t = 0; t < 41; ++t)
        EXPECT_EQ(tg[static_cast<size_t>(t)], kIgnore) << "test rows: answers only";
      if (value_of.count(1)) {
        first_value_of_key1.push_back(value_of[1]);
        maps_differ |= first_value_of_key1.front() != value_of[1];
      }
    }
    EXPECT_TRUE(maps_differ) << "a fresh key -> value map per example";
  }
}

TEST(SyntheticSafari, TrainRowsAreTheShiftedSequence) {
  auto s = spec("associative_recall", 20, 40);
  s.loss = "all";
  SyntheticData data(s, 3);
  const auto b = data.next_batch(16);
  for (int64_t r = 0; r < 16; ++r) {
    const auto in = row(b.input, r), tg = row(b.target, r);
    for (size_t t = 0; t + 1 < in.size(); ++t) EXPECT_EQ(tg[t], in[t + 1]);
    EXPECT_GT(tg.back(), 9);  // the value
  }
  s.loss = "answer";
  SyntheticData masked(s, 3);
  const auto m = masked.next_batch(16);
  EXPECT_TRUE(torch::equal(m.input, b.input));
  EXPECT_TRUE(torch::equal(m.target.select(1, 41), b.target.select(1, 41)));
  EXPECT_TRUE((m.target.narrow(1, 0, 41) == kIgnore).all().item<bool>());
  EXPECT_EQ(effective_loss(spec("associative_recall", 20, 40)), "all");  // safari's default
}

TEST(SyntheticSafari, InductionHeadStructure) {
  const auto s = spec("induction_head", 20, 30);
  SyntheticData data(s, 11);
  ASSERT_EQ(data.row_len(), 31);
  const auto b = data.test_batch(0, 100);
  std::set<int64_t> trigger_positions;
  for (int64_t r = 0; r < 100; ++r) {
    const auto in = row(b.input, r), tg = row(b.target, r);
    ASSERT_EQ(in[30], 19);  // the final `=>`
    std::vector<int64_t> prefixes;
    for (int64_t t = 0; t < 30; ++t) {
      if (in[static_cast<size_t>(t)] == 19)
        prefixes.push_back(t);
      else {
        ASSERT_GE(in[static_cast<size_t>(t)], 1);
        ASSERT_LE(in[static_cast<size_t>(t)], 18);
      }
    }
    ASSERT_EQ(prefixes.size(), 1u);
    const int64_t p = prefixes[0];
    ASSERT_LT(p, 28);  // rng.integers(seq_len - 2)
    trigger_positions.insert(p);
    EXPECT_EQ(tg[30], in[static_cast<size_t>(p + 1)]) << "the token after the first `=>`";
    EXPECT_EQ(b.answer[r].sum().item<int64_t>(), 1);
    EXPECT_TRUE(b.answer[r][30].item<bool>());
  }
  EXPECT_GT(trigger_positions.size(), 15u);
}

TEST(SyntheticSafari, ExamplesAreDistinctWithinEachSplit) {
  // Induction at V 4, L 6 has 4 trigger places x 2^5 tokens = 128 sequences, so 60 draws
  // repeat often; safari draws again until each split holds distinct examples.
  auto s = spec("induction_head", 4, 6);
  s.train_examples = 60;
  s.test_examples = 60;
  SyntheticData data(s, 5);
  auto whole = [](const SyntheticBatch& b, int64_t r) {
    auto in = row(b.input, r);
    in.push_back(b.target[r][6].item<int64_t>());
    return in;
  };
  std::set<std::vector<int64_t>> test, train;
  const auto t = data.test_batch(0, 60);
  for (int64_t r = 0; r < 60; ++r) test.insert(whole(t, r));
  EXPECT_EQ(test.size(), 60u);
  for (int step = 0; step < 6; ++step) {
    const auto b = data.next_batch(10);
    for (int64_t r = 0; r < 10; ++r) train.insert(whole(b, r));
  }
  EXPECT_EQ(train.size(), 60u) << "one epoch visits 60 distinct training examples";
  // More distinct examples than the task has: a one-line error naming the key.
  s.train_examples = 200;
  try {
    SyntheticData too_many(s, 5);
    FAIL() << "200 distinct examples from 128";
  } catch (const herd::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("data.synthetic.train_examples: 200 distinct", 0), 0u)
        << e.what();
  }
}

TEST(SyntheticMqar, StructureAsZoology) {
  auto s = spec("mqar", 100, 32);
  s.num_kv_pairs = 4;
  s.random_non_queries = false;
  SyntheticData data(s, 2);
  ASSERT_EQ(data.row_len(), 32);
  const auto b = data.test_batch(0, 200);
  int64_t gap_zero = 0;
  for (int64_t r = 0; r < 200; ++r) {
    const auto in = row(b.input, r), tg = row(b.target, r);
    std::map<int64_t, int64_t> value_of;
    for (int64_t i = 0; i < 4; ++i) {
      const int64_t k = in[static_cast<size_t>(2 * i)], v = in[static_cast<size_t>(2 * i + 1)];
      ASSERT_GE(k, 1);
      ASSERT_LT(k, 50);
      ASSERT_GE(v, 50);
      ASSERT_LT(v, 100);
      ASSERT_FALSE(value_of.count(k)) << "distinct keys";
      value_of[k] = v;
    }
    std::set<int64_t> values;
    for (auto [k, v] : value_of) values.insert(v);
    ASSERT_EQ(values.size(), 4u) << "distinct values";
    std::set<int64_t> queried;
    for (int64_t t = 8; t < 32; ++t) {
      const bool answer = b.answer[r][t].item<bool>();
      const int64_t x = in[static_cast<size_t>(t)];
      if (answer) {
        ASSERT_EQ((t - 8) % 2, 0) << "queries at even slots";
        ASSERT_TRUE(value_of.count(x));
        EXPECT_EQ(tg[static_cast<size_t>(t)], value_of[x]);
        queried.insert(x);
        gap_zero += t == 8;
      } else {
        EXPECT_EQ(x, 0) << "random_non_queries: false leaves zeros";
        EXPECT_EQ(tg[static_cast<size_t>(t)], kIgnore);
      }
    }
    EXPECT_EQ(queried.size(), 4u) << "every key queried once";
    for (int64_t t = 0; t < 8; ++t) EXPECT_FALSE(b.answer[r][t].item<bool>());
  }
  // power_a 0.01 puts ~1/g weight on gap g of 12: gap 0 is taken far more often than 4/12.
  EXPECT_GT(gap_zero, 200 * 0.6);
  EXPECT_EQ(effective_loss(s), "answer");
  // random_non_queries: the slots between queries take random tokens of [0, V).
  s.random_non_queries = true;
  SyntheticData noisy(s, 2);
  const auto n = noisy.test_batch(0, 50);
  const auto filler = n.input.narrow(1, 8, 24).masked_select(~n.answer.narrow(1, 8, 24));
  EXPECT_GT((filler != 0).sum().item<int64_t>(), filler.numel() / 2);
  EXPECT_LT(filler.max().item<int64_t>(), 100);
}

TEST(SyntheticPasskey, KeyStatedAtItsDepthAndAskedAtTheEnd) {
  auto s = spec("passkey", 20, 64);
  s.key_len = 5;
  s.depths = {0.0, 0.5, 1.0};
  SyntheticData data(s, 4);
  ASSERT_EQ(data.generator().group_names(),
            (std::vector<std::string>{"depth_0", "depth_0.5", "depth_1"}));
  const auto b = data.test_batch(0, 30);
  const int64_t body = 59, room = body - 6;
  for (int64_t r = 0; r < 30; ++r) {
    const auto in = row(b.input, r), tg = row(b.target, r);
    const int64_t group = r % 3;
    EXPECT_EQ(b.group[r].item<int64_t>(), group);
    const int64_t start = group == 0 ? 0 : group == 1 ? (room + 1) / 2 : room;
    ASSERT_EQ(in[static_cast<size_t>(start)], kPasskeyStated) << "row " << r;
    ASSERT_EQ(in[static_cast<size_t>(body)], kPasskeyAsked);
    for (int64_t i = 0; i < 5; ++i) {
      const int64_t digit = in[static_cast<size_t>(start + 1 + i)];
      ASSERT_LT(digit, 10);
      EXPECT_EQ(tg[static_cast<size_t>(body + i)], digit) << "the key, digit " << i;
      EXPECT_TRUE(b.answer[r][body + i].item<bool>());
    }
    EXPECT_EQ(b.answer[r].sum().item<int64_t>(), 5);
    for (int64_t t = 0; t < body; ++t)
      if (t < start || t > start + 5) {
        EXPECT_GE(in[static_cast<size_t>(t)], kPasskeyFirstFiller);
      }
  }
  EXPECT_TRUE(data.generator().whole_example_accuracy());
}

TEST(SyntheticData, DeterministicFromTheSeed) {
  for (const char* task : {"associative_recall", "induction_head", "passkey"}) {
    auto s = spec(task, 20, 40);
    SyntheticData a(s, 9), b(s, 9), c(s, 10);
    for (int step = 0; step < 3; ++step) {
      const auto x = a.next_batch(8), y = b.next_batch(8), z = c.next_batch(8);
      EXPECT_TRUE(torch::equal(x.input, y.input)) << task;
      EXPECT_TRUE(torch::equal(x.target, y.target)) << task;
      EXPECT_FALSE(torch::equal(x.input, z.input)) << task;
    }
    EXPECT_TRUE(torch::equal(a.test_batch(0, 20).input, b.test_batch(0, 20).input));
  }
}

// The position after some batches, restored into a new loader, gives the same next batch:
// a fixed set across an epoch boundary, fresh examples, and rank slices of a global batch.
TEST(SyntheticData, ResumeMidEpochGivesTheSameNextBatch) {
  for (int64_t train_examples : {50, 0}) {
    auto s = spec("associative_recall", 20, 40);
    s.train_examples = train_examples;
    SyntheticData a(s, 21);
    for (int i = 0; i < 3; ++i) a.next_batch(16);  // 48 of 50: the next batch crosses an epoch
    const std::string state = a.state();
    EXPECT_EQ(state, "epoch=0 next_sample=48 seed=21");
    const auto want = a.next_batch(16);
    SyntheticData b(s, 21);
    b.restore(state);
    const auto got = b.next_batch(16);
    EXPECT_TRUE(torch::equal(want.input, got.input)) << train_examples;
    EXPECT_TRUE(torch::equal(want.target, got.target)) << train_examples;
    EXPECT_EQ(a.state(), b.state());
    // Two ranks' slices are the halves of the global batch.
    SyntheticData r0(s, 21), r1(s, 21);
    r0.restore(state);
    r1.restore(state);
    const auto h0 = r0.next_batch(16, 0, 2), h1 = r1.next_batch(16, 1, 2);
    EXPECT_TRUE(torch::equal(torch::cat({h0.input, h1.input}), want.input));
  }
  auto fixed = spec("associative_recall", 20, 40);
  SyntheticData d(fixed, 1);
  EXPECT_THROW(d.restore("epoch=0 next_sample=300 seed=1"), herd::Error);  // past its 300 examples
}

TEST(SyntheticScore, PerfectAndWorstPredictors) {
  auto s = spec("passkey", 20, 32);
  s.key_len = 3;
  s.depths = {0.25, 0.75};
  SyntheticData data(s, 8);
  const auto b = data.test_batch(0, 10);
  auto score = [&](const torch::Tensor& predicted, bool whole) {
    AnswerCounts c;
    c.group_correct.assign(2, 0.0);
    c.group_count.assign(2, 0.0);
    score_answers(predicted, b.target, b.answer, b.group, whole, c);
    return c;
  };
  EXPECT_EQ(score(b.target, true).accuracy(), 1.0);
  EXPECT_EQ(score(b.target, false).accuracy(), 1.0);
  const auto wrong = torch::where(b.answer, (b.target + 1) % 20, b.target);
  EXPECT_EQ(score(wrong, true).accuracy(), 0.0);
  EXPECT_EQ(score(wrong, false).accuracy(), 0.0);
  // Right everywhere but at the answers is worth nothing; answers right and the rest wrong, all.
  const auto rest_wrong = torch::where(b.answer, b.target, torch::full_like(b.target, 7));
  EXPECT_EQ(score(rest_wrong, false).accuracy(), 1.0);
  // One digit of rows 0 and 1 wrong: per example 8/10, per digit 28/30.
  auto one_off = b.target.clone();
  for (int64_t r : {0, 1}) one_off[r][31] = (b.target[r][31] + 1) % 10;
  const auto whole = score(one_off, true), digits = score(one_off, false);
  EXPECT_DOUBLE_EQ(whole.accuracy(), 0.8);
  EXPECT_DOUBLE_EQ(digits.accuracy(), 28.0 / 30.0);
  EXPECT_EQ(whole.group_count, (std::vector<double>{5, 5}));
  EXPECT_EQ(whole.group_correct, (std::vector<double>{4, 4}));  // rows 0 (depth 0) and 1 (depth 1)
}

}  // namespace
}  // namespace herd::data::synthetic
