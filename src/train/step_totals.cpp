#include "train/step_totals.h"

#include <algorithm>

#include "core/error.h"

namespace herd {
namespace {

torch::Tensor as_f64(const torch::Tensor& t) {
  return t.detach().to(torch::kFloat64).reshape({});
}

torch::Tensor add(const torch::Tensor& total, const torch::Tensor& x) {
  return total.defined() ? total + x : x;
}

}  // namespace

void StepTotals::add(const LossOutput& out) {
  loss_ = herd::add(loss_, as_f64(out.loss) / static_cast<double>(micro_steps_));
  for (const auto& [name, t] : out.tallies) {
    auto& [sum, count] = tallies_[name];
    sum = herd::add(sum, as_f64(t.sum));
    count += t.count;
  }
}

StepValues StepTotals::read(const torch::Tensor& grad_norm, const RankSum& ranks) const {
  HERD_CHECK(loss_.defined(), "step totals: read before any micro-step was added");
  const auto device = loss_.device();
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  std::vector<torch::Tensor> parts{loss_};  // [loss, sum_1, count_1, ...]
  for (const auto& [name, t] : tallies_) {
    parts.push_back(t.first.to(device));
    parts.push_back(torch::full({}, t.second, f64));  // a fill, not a host-to-device copy
  }
  parts.push_back(torch::full({}, vote_, f64));
  torch::Tensor figures = torch::stack(parts);
  if (ranks.sum) ranks.sum(figures);  // [dist] on the device, before the one copy
  std::vector<torch::Tensor> all{figures};
  if (grad_norm.defined()) all.push_back(as_f64(grad_norm));
  const std::vector<double> v = read_values(all);
  StepValues out;
  out.loss = v[0] / static_cast<double>(ranks.world);
  size_t i = 1;
  for (const auto& [name, t] : tallies_) {
    out.tallies[name] = {v[i], v[i + 1]};
    i += 2;
  }
  out.votes = v[i++];
  if (grad_norm.defined()) out.grad_norm = v[i];
  return out;
}

std::vector<double> read_values(const std::vector<torch::Tensor>& tensors) {
  std::vector<size_t> offset(tensors.size() + 1, 0);
  for (size_t i = 0; i < tensors.size(); ++i)
    offset[i + 1] = offset[i] + static_cast<size_t>(tensors[i].numel());
  std::vector<double> out(offset.back());
  std::map<std::string, std::vector<size_t>> by_device;  // tensors not on the CPU
  auto copy_out = [&](size_t i, const torch::Tensor& host) {
    const auto flat = host.reshape({-1}).to(torch::kFloat64).contiguous();
    std::copy_n(flat.data_ptr<double>(), flat.numel(), out.begin() + static_cast<long>(offset[i]));
  };
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].is_cpu())
      copy_out(i, tensors[i].detach());
    else
      by_device[tensors[i].device().str()].push_back(i);
  }
  for (const auto& [device, idx] : by_device) {
    std::vector<torch::Tensor> parts;
    for (size_t i : idx) parts.push_back(tensors[i].detach().reshape({-1}).to(torch::kFloat64));
    const auto host = torch::cat(parts).to(torch::kCPU);  // the one wait for this device
    int64_t at = 0;
    for (size_t i : idx) {
      const int64_t n = tensors[i].numel();
      copy_out(i, host.narrow(0, at, n));
      at += n;
    }
  }
  return out;
}

torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad().data());
  if (grads.empty()) return torch::zeros({}, torch::kFloat64);
  std::vector<torch::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto& g : grads) norms.push_back(g.norm(2.0));
  auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2.0);
  auto coef = torch::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
  for (auto& g : grads) g.mul_(coef);
  return total;
}

}  // namespace herd
