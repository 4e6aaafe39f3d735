// Accuracy at the answers of synthetic examples: per answer position (safari, zoology), or
// per example with every answer right (passkey's exact recall), overall and per group.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace herd::data::synthetic {

struct AnswerCounts {
  double correct = 0, count = 0;
  std::vector<double> group_correct, group_count;  // sized by the caller (groups, or empty)
  double accuracy() const { return count > 0 ? correct / count : 0.0; }
};

// predicted, target [B, T] int64; answer [B, T] bool; group [B] int64 (< groups sized in
// `into`). Only the answer positions count; whole_example: a row counts once, right when
// every answer of it is.
void score_answers(const torch::Tensor& predicted, const torch::Tensor& target,
                   const torch::Tensor& answer, const torch::Tensor& group, bool whole_example,
                   AnswerCounts& into);

}  // namespace herd::data::synthetic
