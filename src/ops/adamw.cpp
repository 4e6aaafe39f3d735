// FusedAdamW: state handling as torch::optim::AdamW::step, then each parameter on its path.
#include "ops/adamw.h"

#include <ATen/record_function.h>

#include <cmath>

#include "core/error.h"
#include "ops/adamw_impl.h"

namespace herd::ops {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

void update_reference(const AdamWParam& a) {
  auto p = a.param;
  const auto& grad = a.grad;
  const auto& o = *a.options;
  auto& st = *a.state;
  // torch::optim::AdamW::step's ops, in its order (amsgrad included).
  if (o.weight_decay() != 0) p.mul_(1 - adamw_decay_rate(a));
  st.step(st.step() + 1);
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(st.step()));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(st.step()));
  st.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
  st.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  torch::Tensor denom;
  if (o.amsgrad()) {
    torch::max_out(st.max_exp_avg_sq(), st.exp_avg_sq(), st.max_exp_avg_sq());
    denom = (st.max_exp_avg_sq().sqrt() / std::sqrt(bc2)).add_(o.eps());
  } else {
    denom = (st.exp_avg_sq().sqrt() / std::sqrt(bc2)).add_(o.eps());
  }
  p.addcdiv_(st.exp_avg(), denom, -(o.lr() / bc1));
}

bool same_layout(const torch::Tensor& a, const torch::Tensor& p) {
  return a.defined() && a.layout() == torch::kStrided && a.scalar_type() == p.scalar_type() &&
         a.device() == p.device() && a.sizes() == p.sizes() && a.is_contiguous();
}

}  // namespace

double adamw_decay_rate(const AdamWParam& a) {
  const auto& o = *a.options;
  if (a.rule == WeightDecayRule::lr_scaled) return o.lr() * o.weight_decay();
  const double factor = a.initial_lr != 0 ? o.lr() / a.initial_lr : 1.0;
  return factor * o.weight_decay();
}

Support adamw_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble});
}

Support adamw_supports(const AdamWParam& a) {
  if (!a.state || !a.options) return Support::no("no optimizer state");
  if (a.options->amsgrad()) return Support::no("amsgrad");
  const auto& p = a.param;
  if (!p.defined() || p.layout() != torch::kStrided || !p.is_contiguous())
    return Support::no("parameter not a contiguous dense tensor");
  if (!same_layout(a.grad, p) || !same_layout(a.state->exp_avg(), p) ||
      !same_layout(a.state->exp_avg_sq(), p))
    return Support::no("gradient or moments not contiguous dense tensors like the parameter");
  OpTarget t;
  t.device = p.device().type();
  t.dtype = p.scalar_type();
  return adamw_supports(t);
}

void adamw_step_reference(const std::vector<AdamWParam>& params) {
  torch::NoGradGuard no_grad;
  for (const auto& a : params) update_reference(a);
}

void adamw_step_fused(const std::vector<AdamWParam>& params) {
  RECORD_FUNCTION("herd::adamw_step", std::vector<c10::IValue>());
  torch::NoGradGuard no_grad;
  std::vector<AdamWParam> cpu, cuda;
  for (const auto& a : params) {
    const auto s = adamw_supports(a);
    HERD_CHECK(s.ok, "adamw: the fused step does not take a ", a.param.scalar_type(), " ",
               a.param.sizes(), " parameter on ", a.param.device(), ": ", s.why);
    (a.param.is_cuda() ? cuda : cpu).push_back(a);
  }
  if (!cpu.empty()) detail::adamw_step_cpu(cpu);
#ifdef HERD_HAVE_CUDA_KERNELS
  if (!cuda.empty()) detail::adamw_step_cuda(cuda);
#endif
}

void adamw_step(const std::vector<AdamWParam>& params) {
  std::vector<AdamWParam> fused, reference;
  for (const auto& a : params) {
    OpTarget t;
    t.device = a.param.device().type();
    t.dtype = a.param.scalar_type();
    (choose_path("adamw", t, adamw_supports(a)) == KernelPath::reference ? reference : fused)
        .push_back(a);
  }
  if (!fused.empty()) adamw_step_fused(fused);
  if (!reference.empty()) adamw_step_reference(reference);
}

FusedAdamW::FusedAdamW(std::vector<torch::optim::OptimizerParamGroup> groups,
                       torch::optim::AdamWOptions defaults, WeightDecayRule rule)
    : torch::optim::AdamW(std::move(groups), std::move(defaults)), rule_(rule) {
  for (auto& group : param_groups_) initial_lr_.push_back(group.options().get_lr());
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  std::vector<AdamWParam> params;
  for (size_t g = 0; g < param_groups_.size(); ++g) {
    auto& group = param_groups_[g];
    auto& options = static_cast<AdamWOptions&>(group.options());
    if (initial_lr_.size() <= g) initial_lr_.push_back(options.lr());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      HERD_CHECK(!p.grad().is_sparse(), "AdamW does not support sparse gradients");
      auto it = state_.find(p.unsafeGetTensorImpl());
      if (it == state_.end()) {  // as torch: zero moments, step 0
        auto st = std::make_unique<AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (options.amsgrad())
          st->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = state_.emplace(p.unsafeGetTensorImpl(), std::move(st)).first;
      }
      AdamWParam a{p,        p.grad(), static_cast<AdamWParamState*>(it->second.get()),
                   &options, rule_,    initial_lr_[g]};
      params.push_back(std::move(a));
    }
  }
  adamw_step(params);
  return loss;
}

}  // namespace herd::ops
