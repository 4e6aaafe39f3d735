#include "data/synthetic/score.h"

namespace herd::data::synthetic {

void score_answers(const torch::Tensor& predicted, const torch::Tensor& target,
                   const torch::Tensor& answer, const torch::Tensor& group, bool whole_example,
                   AnswerCounts& into) {
  const auto hit = (predicted == target) & answer;  // [B, T]
  // Per row: right answers and answers, or (whole) 1 / 1 when all are right.
  auto right = hit.sum(1).to(torch::kFloat64), total = answer.sum(1).to(torch::kFloat64);
  if (whole_example) {
    right = (right == total).to(torch::kFloat64);
    total = torch::ones_like(total);
  }
  into.correct += right.sum().item<double>();
  into.count += total.sum().item<double>();
  const auto groups = static_cast<int64_t>(into.group_count.size());
  if (groups == 0) return;
  const auto g = group.to(torch::kLong);
  const auto by_right = torch::zeros({groups}, torch::kFloat64).index_add_(0, g, right);
  const auto by_total = torch::zeros({groups}, torch::kFloat64).index_add_(0, g, total);
  for (int64_t i = 0; i < groups; ++i) {
    into.group_correct[static_cast<size_t>(i)] += by_right[i].item<double>();
    into.group_count[static_cast<size_t>(i)] += by_total[i].item<double>();
  }
}

}  // namespace herd::data::synthetic
