#include "train/step_totals.h"

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

StepValues StepTotals::read(const torch::Tensor& grad_norm) const {
  HERD_CHECK(loss_.defined(), "step totals: read before any micro-step was added");
  std::vector<torch::Tensor> scalars{loss_};
  if (grad_norm.defined()) scalars.push_back(as_f64(grad_norm));
  for (const auto& [name, t] : tallies_) scalars.push_back(t.first);
  const std::vector<double> v = read_scalars(scalars);
  StepValues out;
  size_t i = 0;
  out.loss = v[i++];
  if (grad_norm.defined()) out.grad_norm = v[i++];
  for (const auto& [name, t] : tallies_) out.tallies[name] = {v[i++], t.second};
  return out;
}

std::vector<double> read_scalars(const std::vector<torch::Tensor>& scalars) {
  std::vector<double> out(scalars.size());
  std::map<std::string, std::vector<size_t>> by_device;  // non-CPU tensors, by device
  for (size_t i = 0; i < scalars.size(); ++i) {
    HERD_CHECK(scalars[i].numel() == 1, "read_scalars: tensor ", i, " has ", scalars[i].numel(),
               " elements, expected 1");
    if (scalars[i].is_cpu())
      out[i] = scalars[i].item<double>();
    else
      by_device[scalars[i].device().str()].push_back(i);
  }
  for (const auto& [device, idx] : by_device) {
    std::vector<torch::Tensor> parts;
    for (size_t i : idx) parts.push_back(as_f64(scalars[i]));
    const auto host = torch::stack(parts).to(torch::kCPU);  // the one wait for this device
    const double* p = host.data_ptr<double>();
    for (size_t k = 0; k < idx.size(); ++k) out[idx[k]] = p[k];
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
