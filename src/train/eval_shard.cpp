#include "train/eval_shard.h"

#include "core/error.h"
#include "train/step_totals.h"

namespace herd {

int64_t eval_batch_count(uint64_t samples, int64_t batch, int64_t max_batches) {
  HERD_CHECK(batch > 0, "evaluation batch size ", batch, " (expected > 0)");
  const auto b = static_cast<uint64_t>(batch);
  const auto all = static_cast<int64_t>((samples + b - 1) / b);
  return max_batches > 0 ? std::min(all, max_batches) : all;
}

void EvalSums::add(size_t k, const torch::Tensor& x) {
  auto v = x.detach().to(torch::kFloat64).reshape({});
  device_[k] = device_[k].defined() ? device_[k] + v : v;
}

std::vector<double> EvalSums::total(const EvalShard& shard) const {
  std::vector<torch::Tensor> defined;
  for (const auto& t : device_)
    if (t.defined()) defined.push_back(t);
  const std::vector<double> read = read_values(defined);
  std::vector<double> out = host_;
  size_t j = 0;
  for (size_t k = 0; k < out.size(); ++k)
    if (device_[k].defined()) out[k] += read[j++];
  return shard.reduce(std::move(out));
}

}  // namespace herd
