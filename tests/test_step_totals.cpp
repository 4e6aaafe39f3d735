// One host read per optimizer step: micro-step losses and tallies summed on the device give
// the very doubles the old per-micro-step .item() arithmetic gave; the rank reduction runs on
// the device vector once; the sync-free gradient clip equals LibTorch's clip_grad_norm_.
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/step_totals.h"

namespace herd {
namespace {

TEST(StepTotals, SameDoublesAsHostArithmetic) {
  const std::vector<float> losses = {2.3456789f, 1.1111111f, 3.9999999f};
  StepTotals totals(3);
  double host = 0, correct = 0;
  for (size_t m = 0; m < losses.size(); ++m) {
    const auto loss = torch::tensor(losses[m]);
    const auto hits = torch::tensor(int64_t(m + 5));
    totals.add({loss, {{"acc", {hits, 8.0}}}});
    host += loss.item<double>() / 3.0;
    correct += static_cast<double>(m + 5);
  }
  const auto v = totals.read(torch::tensor(0.75f));
  EXPECT_EQ(v.loss, host);  // bit for bit
  EXPECT_EQ(v.grad_norm, 0.75);
  ASSERT_EQ(v.tallies.count("acc"), 1u);
  EXPECT_EQ(v.tallies.at("acc").sum, correct);
  EXPECT_EQ(v.tallies.at("acc").count, 24.0);
  EXPECT_EQ(totals.read().grad_norm, 0.0);
  EXPECT_THROW(StepTotals(1).read(), Error);
}

TEST(StepTotals, RankSumRunsOnceOverLossAndTallies) {
  StepTotals totals(1);
  totals.add({torch::tensor(2.0), {{"acc", {torch::tensor(3.0), 4.0}}}});
  totals.vote(0.0);  // this rank was not asked to stop
  int calls = 0;
  const RankSum ranks{2, [&](torch::Tensor& t) {
                        ++calls;
                        ASSERT_EQ(t.numel(), 4);  // loss, acc sum, acc count, stop votes
                        t = t + torch::tensor({4.0, 5.0, 4.0, 1.0}, torch::kFloat64);  // rank 1's
                      }};
  const auto v = totals.read(torch::tensor(1.5), ranks);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(v.loss, 3.0);  // (2 + 4) / 2 ranks
  EXPECT_EQ(v.tallies.at("acc").sum, 8.0);
  EXPECT_EQ(v.tallies.at("acc").count, 8.0);
  EXPECT_EQ(v.grad_norm, 1.5) << "the gradient norm is the same on every rank: not summed";
  EXPECT_EQ(v.votes, 1.0) << "rank 1 asked to stop: every rank reads it in the same copy";
}

TEST(StepTotals, ReadValuesKeepsOrderAcrossShapes) {
  const auto v = read_values(
      {torch::tensor({1.0, 2.0}), torch::tensor(3.0f), torch::tensor({{int64_t{4}, int64_t{5}}})});
  EXPECT_EQ(v, (std::vector<double>{1, 2, 3, 4, 5}));
}

TEST(StepTotals, ClipEqualsLibTorchClipGradNorm) {
  for (double max_norm : {0.01, 100.0}) {  // clipping and not
    torch::manual_seed(4);
    std::vector<torch::Tensor> a, b;
    for (auto shape : {std::vector<int64_t>{7, 3}, {5}, {2, 2, 2}}) {
      auto p = torch::randn(shape, torch::requires_grad());
      p.mutable_grad() = torch::randn(shape);
      auto q = p.detach().clone().requires_grad_(true);
      q.mutable_grad() = p.grad().clone();
      a.push_back(p);
      b.push_back(q);
    }
    a.push_back(torch::randn({3}, torch::requires_grad()));  // no gradient: skipped by both
    b.push_back(a.back().detach().clone().requires_grad_(true));
    const double expected = torch::nn::utils::clip_grad_norm_(b, max_norm);
    const auto norm = clip_grad_norm(a, max_norm);
    EXPECT_EQ(norm.item<double>(), expected) << max_norm;
    for (size_t i = 0; i + 1 < a.size(); ++i)
      EXPECT_TRUE(torch::equal(a[i].grad(), b[i].grad())) << max_norm << " parameter " << i;
  }
  EXPECT_EQ(clip_grad_norm({torch::zeros({2}, torch::requires_grad())}, 1.0).item<double>(), 0);
}

}  // namespace
}  // namespace herd
