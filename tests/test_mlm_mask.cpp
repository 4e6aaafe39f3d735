// MLM masking: selection rate, the 80/10/10 split, special ids never touched, determinism.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/mlm_mask.h"

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

TEST(MlmMask, BadArgumentsAreErrors) {
  auto tokens = torch::randint(7, kVocab, {2, 8}, torch::kLong);
  EXPECT_THROW(mask_tokens(tokens, 0.0, kSpecial, 1), Error);
  EXPECT_THROW(mask_tokens(tokens, 1.0, kSpecial, 1), Error);
  EXPECT_THROW(mask_tokens(tokens.to(torch::kInt), 0.1, kSpecial, 1), Error);
  EXPECT_THROW(mask_tokens(tokens, 0.1, MaskSpecial{kVocab, kVocab, {}}, 1), Error);
}

}  // namespace
}  // namespace herd::data
