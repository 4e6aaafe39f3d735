#include "ops/short_conv.h"
#include <ATen/record_function.h>

#include <ATen/autocast_mode.h>

#include "core/error.h"
#include "kernels/short_conv.cuh"
#include "ops/short_conv_impl.h"

namespace herd::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::array<torch::Tensor, 3> backward_on_device(const torch::Tensor& x, const torch::Tensor& w,
                                                const torch::Tensor& dy, bool need_dx, bool need_dw,
                                                bool need_dbias) {
#ifdef HERD_HAVE_CUDA_KERNELS
  if (x.is_cuda()) return detail::short_conv_backward_cuda(x, w, dy, need_dx, need_dw, need_dbias);
#endif
  return detail::short_conv_backward_cpu(x, w, dy, need_dx, need_dw, need_dbias);
}

// The same gradients in differentiable ATen ops: used when a graph of the backward is asked
// for (create_graph, i.e. double backward), which the fused kernels do not record.
std::array<torch::Tensor, 3> backward_aten(const torch::Tensor& x_in, const torch::Tensor& w,
                                           const torch::Tensor& dy_in, bool has_bias) {
  const int64_t C = x_in.size(1), L = x_in.size(2), K = w.size(-1);
  // bfloat16 activations with float taps: the graph runs in the taps' dtype.
  const auto x = x_in.to(w.scalar_type()), dy = dy_in.to(w.scalar_type());
  // dx[s] = sum_j w[j] dy[s+K-1-j]: a correlation with the flipped filter, anticausal.
  auto dx = torch::conv1d(dy, w.flip(-1), {}, 1, K - 1, 1, C).narrow(-1, K - 1, L);
  auto xp = torch::constant_pad_nd(x, {K - 1, 0});
  std::vector<torch::Tensor> taps;
  for (int64_t j = 0; j < K; ++j)
    taps.push_back((dy * xp.narrow(-1, j, L)).sum(torch::IntArrayRef{0, 2}));
  auto dw = torch::stack(taps, 1).view_as(w);
  return {dx.to(x_in.scalar_type()), dw,
          has_bias ? dy.sum(torch::IntArrayRef{0, 2}) : torch::Tensor()};
}

struct ShortConvFunction : torch::autograd::Function<ShortConvFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias) {
    RECORD_FUNCTION("herd::short_conv forward", std::vector<c10::IValue>());
    ctx->save_for_backward({x, weight});
    const bool has_bias = bias.numel() > 0;  // see apply_fused
    ctx->saved_data["has_bias"] = has_bias;
    const auto w = weight.reshape({weight.size(0), weight.size(-1)}).contiguous();
    const auto b = has_bias ? bias.contiguous() : torch::Tensor();
#ifdef HERD_HAVE_CUDA_KERNELS
    if (x.is_cuda()) return detail::short_conv_forward_cuda(x, w, b);
#endif
    return detail::short_conv_forward_cpu(x, w, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1];
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const auto& dy = grads[0];
    if (!dy.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor()};
    if (torch::GradMode::is_enabled()) {
      auto g = backward_aten(x, weight, dy, has_bias);
      return {g[0], g[1], g[2]};
    }
    const auto w = weight.reshape({weight.size(0), weight.size(-1)}).contiguous();
    auto g = backward_on_device(x, w, dy, ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                has_bias && ctx->needs_input_grad(2));
    if (g[1].defined()) g[1] = g[1].view_as(weight);
    return {g[0], g[1], g[2]};
  }
};

// autograd::Function cannot take an undefined tensor input; no bias travels as an empty one.
torch::Tensor apply_fused(const torch::Tensor& x, const torch::Tensor& weight,
                          const torch::Tensor& bias) {
  return ShortConvFunction::apply(x, weight,
                                  bias.defined() ? bias : torch::empty({0}, weight.options()));
}

}  // namespace

Support short_conv_supports(const OpTarget& t, int64_t K) {
  if (K < 1 || K > kernels::kShortConvMaxK)
    return Support::no(str("filter width ", K, " (kernel takes 1..", kernels::kShortConvMaxK, ")"));
  return device_supports(t, {torch::kFloat, torch::kDouble, torch::kBFloat16});
}

Support short_conv_supports(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias) {
  if (!x.defined() || !weight.defined() || x.dim() != 3 || weight.dim() != 3)
    return Support::no("needs x [B, C, L] and weight [C, 1, K]");
  if (x.layout() != torch::kStrided || weight.layout() != torch::kStrided)
    return Support::no("sparse inputs");
  const int64_t C = x.size(1);
  if (weight.size(0) != C || weight.size(1) != 1) return Support::no("weight is not [C, 1, K]");
  if (x.numel() == 0) return Support::no("empty input");
  const auto dt = x.scalar_type(), wt = weight.scalar_type();
  // Taps in x's dtype, or float taps for bfloat16 activations (autocast keeps weights float).
  const bool taps_ok = wt == dt || (dt == torch::kBFloat16 && wt == torch::kFloat);
  if (!taps_ok || weight.device() != x.device())
    return Support::no("weight dtype/device do not suit x");
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != C || bias.scalar_type() != wt ||
                         bias.device() != x.device() || bias.layout() != torch::kStrided))
    return Support::no("bias is not a [C] tensor of the weight's dtype and device");
  return short_conv_supports(OpTarget::of(x), weight.size(2));
}

KernelPath short_conv_path(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias) {
  return choose_path("short_conv", OpTarget::of(x), short_conv_supports(x, weight, bias));
}

torch::Tensor short_conv_reference(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias) {
  const int64_t L = x.size(-1), K = weight.size(-1);
  auto y = torch::conv1d(x, weight, bias, /*stride=*/1, /*padding=*/K - 1, /*dilation=*/1,
                         /*groups=*/x.size(1));
  return y.narrow(-1, 0, L);
}

torch::Tensor short_conv_fused(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
  const auto s = short_conv_supports(x, weight, bias);
  HERD_CHECK(s.ok, "short_conv: the fused kernel does not take x ", x.sizes(), " ", x.scalar_type(),
             " on ", x.device(), " with weight ", weight.sizes(), ": ", s.why);
  return apply_fused(x, weight, bias);
}

torch::Tensor short_conv(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias) {
  // Under autocast conv1d would run in the autocast dtype: the fused path takes the input in
  // that dtype too (its weights stay float, its sums float).
  torch::Tensor xin = x;
  const auto dev = x.device().type();
  if (at::autocast::is_autocast_enabled(dev) && x.scalar_type() == torch::kFloat)
    xin = x.to(at::autocast::get_autocast_dtype(dev));
  if (short_conv_path(xin, weight, bias) == KernelPath::reference)
    return short_conv_reference(x, weight, bias);
  return apply_fused(xin, weight, bias);
}

}  // namespace herd::ops
