// MLM masking: selection rate, the 80/10/10 split, special ids never touched or drawn,
// uniform replacements, determinism, and the same random stream as the ordinary-id table.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/text/mlm_mask.h"

namespace herd::data {
namespace {

constexpr int64_t kVocab = 100;
const MaskSpecial kSpecial{6, kVocab, {0, 1, 2, 3, 4, 5}};

TEST(MlmMask, ProportionsOnALargeBatch) {
  torch::manual_seed(0);
  // Every id, specials included, about equally often; no [MASK] in the input.
  auto tokens = torch::randint(0, kVocab, {400, 1000}, torch::kLong);
  tokens.masked_fill_(tokens == kSpecial.mask_id, 7);
  auto b = mask_tokens(tokens, 0.3, kSpecial, 42);
  ASSERT_EQ(b.input.sizes(), tokens.sizes());
  ASSERT_EQ(b.labels.sizes(), tokens.sizes());
  auto special = torch::zeros_like(tokens, torch::kBool);
  for (int64_t id : kSpecial.never_mask) special |= tokens == id;
  const auto selected = b.labels != kNotMasked;
  // Special ids are never selected and never changed.
  EXPECT_EQ((selected & special).sum().item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(b.input.index({special}), tokens.index({special})));
  // Labels are the original tokens; unselected positions are unchanged.
  EXPECT_TRUE(torch::equal(b.labels.index({selected}), tokens.index({selected})));
  EXPECT_TRUE(torch::equal(b.input.index({~selected}), tokens.index({~selected})));

  const double eligible = (~special).sum().item<double>();
  const double n = selected.sum().item<double>();
  EXPECT_NEAR(n / eligible, 0.3, 0.005);  // 376k eligible: the binomial sd is 0.0007
  const auto in = b.input.index({selected}), orig = tokens.index({selected});
  const double masked = (in == kSpecial.mask_id).sum().item<double>() / n;
  const double same = (in == orig).sum().item<double>() / n;
  const double replaced = 1.0 - masked - same;
  EXPECT_NEAR(masked, 0.8, 0.005);
  // A random replacement equals the original 1 time in 93 (the ordinary ids).
  EXPECT_NEAR(same, 0.1 + 0.1 / 93, 0.005);
  EXPECT_NEAR(replaced, 0.1 - 0.1 / 93, 0.005);
  // Random replacements are ordinary tokens: never a special id nor [MASK].
  const auto random = in.index({(in != kSpecial.mask_id) & (in != orig)});
  EXPECT_GT(random.numel(), 1000);
  EXPECT_EQ((random < 7).sum().item<int64_t>(), 0);
  EXPECT_EQ((random >= kVocab).sum().item<int64_t>(), 0);
}

TEST(MlmMask, DeterministicForASeed) {
  auto tokens = torch::randint(7, kVocab, {8, 64}, torch::kLong);
  auto a = mask_tokens(tokens, 0.15, kSpecial, 7);
  auto b = mask_tokens(tokens, 0.15, kSpecial, 7);
  auto c = mask_tokens(tokens, 0.15, kSpecial, 8);
  EXPECT_TRUE(torch::equal(a.input, b.input));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_FALSE(torch::equal(a.labels, c.labels));
  // Independent of the global RNG.
  torch::manual_seed(123);
  auto d = mask_tokens(tokens, 0.15, kSpecial, 7);
  EXPECT_TRUE(torch::equal(a.input, d.input));
}

// The replacement draw as it was first written: a table of the ordinary ids indexed by a
// uniform draw. The arithmetic mapping must give the very same stream.
MaskedBatch table_reference(const torch::Tensor& tokens, double rate, const MaskSpecial& sp,
                            uint64_t seed) {
  std::vector<int64_t> ordinary;
  for (int64_t id = 0; id < sp.vocab_size; ++id)
    if (id != sp.mask_id &&
        std::find(sp.never_mask.begin(), sp.never_mask.end(), id) == sp.never_mask.end())
      ordinary.push_back(id);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto eligible = torch::ones_like(tokens, torch::kBool);
  for (int64_t id : sp.never_mask) eligible &= tokens != id;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto selected = (torch::rand(tokens.sizes(), gen, f64) < rate) & eligible;
  const auto action = torch::rand(tokens.sizes(), gen, f64);
  const auto random_ids = torch::tensor(ordinary).index(
      {torch::randint(static_cast<int64_t>(ordinary.size()), tokens.sizes(), gen,
                      torch::TensorOptions().dtype(torch::kLong))});
  auto input =
      torch::where(selected & (action < 0.8), torch::full_like(tokens, sp.mask_id), tokens);
  input = torch::where(selected & (action >= 0.8) & (action < 0.9), random_ids, input);
  return {input, torch::where(selected, tokens, torch::full_like(tokens, kNotMasked))};
}

// Scattered specials, a duplicate, one outside the vocabulary (a tokenizer without BOS
// reports -1) and [MASK] listed among them.
const MaskSpecial kScattered{7, kVocab, {0, 50, 99, 50, -1, 7, 23}};

TEST(MlmMask, SameStreamAsTheOrdinaryIdTable) {
  auto tokens = torch::randint(0, kVocab, {64, 128}, torch::kLong);
  for (const MaskSpecial& sp : {kSpecial, kScattered}) {
    for (uint64_t seed : {1u, 99u}) {
      auto a = mask_tokens(tokens, 0.3, sp, seed), b = table_reference(tokens, 0.3, sp, seed);
      EXPECT_TRUE(torch::equal(a.input, b.input)) << "seed " << seed;
      EXPECT_TRUE(torch::equal(a.labels, b.labels)) << "seed " << seed;
    }
  }
}

// A batch masked row by row with its own seeds equals masking each row alone.
TEST(MlmMask, RowsWithTheirOwnSeedsEqualOneRowAtATime) {
  auto tokens = torch::randint(0, kVocab, {5, 33}, torch::kLong);
  const std::vector<uint64_t> seeds = {3, 1, 4, 1, 5};
  auto all = mask_rows(tokens, 0.3, kScattered, seeds);
  for (int64_t i = 0; i < 5; ++i) {
    auto one = mask_tokens(tokens.narrow(0, i, 1), 0.3, kScattered, seeds[static_cast<size_t>(i)]);
    EXPECT_TRUE(torch::equal(all.input.narrow(0, i, 1), one.input)) << "row " << i;
    EXPECT_TRUE(torch::equal(all.labels.narrow(0, i, 1), one.labels)) << "row " << i;
  }
  EXPECT_THROW(mask_rows(tokens, 0.3, kScattered, {1, 2}), Error);  // a seed per row
}

// Random replacements cover the ordinary ids about uniformly and never hit a special one.
TEST(MlmMask, ReplacementsAreUniformOverOrdinaryIds) {
  auto tokens = torch::full({500, 1000}, int64_t{42}, torch::kLong);
  auto b = mask_tokens(tokens, 0.5, kScattered, 3);
  const auto replaced =
      b.input.index({(b.labels != kNotMasked) & (b.input != 42) & (b.input != 7)});
  const auto counts = torch::bincount(replaced, {}, kVocab);
  for (int64_t id : {0, 7, 23, 50, 99})
    EXPECT_EQ(counts[id].item<int64_t>(), 0) << "special " << id;
  // 25k replacements over 95 ordinary ids (42 among them): about 263 each, sd 16.
  const double expected = static_cast<double>(replaced.numel()) / 95;
  EXPECT_GT(replaced.numel(), 24000);
  for (int64_t id = 0; id < kVocab; ++id) {
    if (id == 0 || id == 7 || id == 23 || id == 50 || id == 99 || id == 42) continue;
    EXPECT_NEAR(counts[id].item<double>(), expected, 6 * std::sqrt(expected)) << "id " << id;
  }
}

TEST(MlmMask, BadArgumentsAreErrors) {
  auto tokens = torch::randint(7, kVocab, {2, 8}, torch::kLong);
  EXPECT_THROW(mask_tokens(tokens, 0.0, kSpecial, 1), Error);
  EXPECT_THROW(mask_tokens(tokens, 1.0, kSpecial, 1), Error);
  EXPECT_THROW(mask_tokens(tokens.to(torch::kInt), 0.1, kSpecial, 1), Error);
  EXPECT_THROW(mask_tokens(tokens, 0.1, MaskSpecial{kVocab, kVocab, {}}, 1), Error);
  // Every id special: nothing to draw a replacement from.
  EXPECT_THROW(mask_tokens(tokens, 0.1, MaskSpecial{0, 2, {1}}, 1), Error);
}

}  // namespace
}  // namespace herd::data
