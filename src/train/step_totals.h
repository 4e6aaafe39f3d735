// The host side of one optimizer step. The loss and train metrics of its micro-steps are
// summed on the device, summed over data-parallel ranks there too, and read with the gradient
// norm in one device-to-host copy per step; nothing else in the loop waits for the device
// (the model's own code may: a boolean-mask gather such as BERT's masked positions must learn
// its size on the host).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "train/task.h"

namespace herd {

struct StepValues {
  double loss = 0;       // the mean of the micro-steps' losses
  double grad_norm = 0;  // 0 without clipping
  Tallies tallies;
  double votes = 0;  // the sum over ranks of vote()
};

// [dist] How the step's figures are added over ranks: `sum` sums a float64 vector in place
// (it may move it to the collective's device); empty for one process.
struct RankSum {
  int64_t world = 1;
  std::function<void(torch::Tensor&)> sum;
};

class StepTotals {
 public:
  explicit StepTotals(int64_t micro_steps) : micro_steps_(micro_steps) {}
  // One micro-step: its loss (mean over its rows) is 1/micro_steps of the step's, summed in
  // float64 exactly as host doubles would be.
  void add(const LossOutput& out);
  // The step's values, with `grad_norm` (a scalar tensor, or undefined) in the same copy;
  // with `ranks`, the loss is the mean over ranks and the tallies sum every rank's rows.
  StepValues read(const torch::Tensor& grad_norm = {}, const RankSum& ranks = {}) const;
  // [dist] A host flag (1: "this rank was asked to stop") summed over ranks in the same copy,
  // so every rank reads the same total and they all stop at the same step.
  void vote(double v) { vote_ = v; }

 private:
  int64_t micro_steps_;
  double vote_ = 0;
  torch::Tensor loss_;                                               // float64 scalar
  std::map<std::string, std::pair<torch::Tensor, double>> tallies_;  // sum, count
};

// The elements of `tensors`, in order, as doubles: those on one device are concatenated and
// copied to the host at once; CPU ones are read directly.
std::vector<double> read_values(const std::vector<torch::Tensor>& tensors);

// torch::nn::utils::clip_grad_norm_ (L2 norm, same arithmetic, so the same bits) without its
// host sync: returns the total norm as a tensor on the gradients' device.
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

}  // namespace herd
