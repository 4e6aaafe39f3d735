// squared_relu: dispatch and autograd; the device halves are squared_relu_cpu.cpp and
// squared_relu_cuda.cpp.
#include "ops/squared_relu.h"
#include <ATen/record_function.h>

#include "core/error.h"
#include "ops/squared_relu_impl.h"

namespace herd::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor forward_on_device(const torch::Tensor& x, const torch::Tensor& bias) {
#ifdef HERD_HAVE_CUDA_KERNELS
  if (x.is_cuda()) return detail::squared_relu_forward_cuda(x, bias);
#endif
  return detail::squared_relu_forward_cpu(x, bias);
}

std::array<torch::Tensor, 2> backward_on_device(const torch::Tensor& x, const torch::Tensor& bias,
                                                const torch::Tensor& dy, bool need_dbias) {
#ifdef HERD_HAVE_CUDA_KERNELS
  if (x.is_cuda()) return detail::squared_relu_backward_cuda(x, bias, dy, need_dbias);
#endif
  return detail::squared_relu_backward_cpu(x, bias, dy, need_dbias);
}

// The bias is flattened over every dimension but the last: x [..., F] is [rows, F].
struct SquaredReluFunction : torch::autograd::Function<SquaredReluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& bias_in) {
    RECORD_FUNCTION("herd::squared_relu forward", std::vector<c10::IValue>());
    // The inputs themselves (not the output): double backward reaches them, and x is what the
    // reference keeps too (relu's output, the same size).
    ctx->save_for_backward({x_in, bias_in});
    const bool has_bias = bias_in.numel() > 0;  // see apply_fused
    ctx->saved_data["has_bias"] = has_bias;
    return forward_on_device(x_in.contiguous(), has_bias ? bias_in.contiguous() : torch::Tensor());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &bias_in = saved[1];
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const auto& dy = grads[0];
    if (!dy.defined()) return {torch::Tensor(), torch::Tensor()};
    if (torch::GradMode::is_enabled()) {  // double backward: differentiable ops
      auto dx = 2 * torch::relu(has_bias ? x + bias_in : x) * dy;
      torch::Tensor db;
      if (has_bias) db = dx.reshape({-1, bias_in.size(0)}).sum(0);
      return {dx, db};
    }
    const auto bias = has_bias ? bias_in.contiguous() : torch::Tensor();
    auto g = backward_on_device(x.contiguous(), bias, dy.contiguous(),
                                has_bias && ctx->needs_input_grad(1));
    return {g[0], g[1]};
  }
};

// autograd::Function cannot take an undefined tensor input; no bias travels as an empty one.
torch::Tensor apply_fused(const torch::Tensor& x, const torch::Tensor& bias) {
  return SquaredReluFunction::apply(x, bias.defined() ? bias : torch::empty({0}, x.options()));
}

}  // namespace

Support squared_relu_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble, torch::kBFloat16});
}

Support squared_relu_supports(const torch::Tensor& x, const torch::Tensor& bias) {
  if (!x.defined() || x.layout() != torch::kStrided || x.numel() == 0)
    return Support::no("needs a non-empty strided tensor");
  if (bias.defined() && (bias.dim() != 1 || x.dim() == 0 || bias.size(0) != x.size(-1) ||
                         bias.scalar_type() != x.scalar_type() || bias.device() != x.device() ||
                         bias.layout() != torch::kStrided))
    return Support::no("bias is not a [F] tensor of x's dtype and device (F = x's last dim)");
  return squared_relu_supports(OpTarget::of(x));
}

KernelPath squared_relu_path(const torch::Tensor& x, const torch::Tensor& bias) {
  return choose_path("squared_relu", OpTarget::of(x), squared_relu_supports(x, bias));
}

torch::Tensor squared_relu_reference(const torch::Tensor& x, const torch::Tensor& bias) {
  return torch::relu(bias.defined() ? x + bias : x).square();
}

torch::Tensor squared_relu_fused(const torch::Tensor& x, const torch::Tensor& bias) {
  const auto s = squared_relu_supports(x, bias);
  HERD_CHECK(s.ok, "squared_relu: the fused kernel does not take ", x.scalar_type(), " ", x.sizes(),
             " on ", x.device(), ": ", s.why);
  return apply_fused(x, bias);
}

torch::Tensor squared_relu(const torch::Tensor& x, const torch::Tensor& bias) {
  if (squared_relu_path(x, bias) == KernelPath::reference) return squared_relu_reference(x, bias);
  return apply_fused(x, bias);
}

}  // namespace herd::ops
