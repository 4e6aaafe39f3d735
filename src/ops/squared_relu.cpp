// squared_relu: dispatch, autograd, and the CPU fast path (kernels/squared_relu.cuh in an
// at::parallel_for loop). The CUDA half is in squared_relu_cuda.cpp.
#include "ops/squared_relu.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <type_traits>

#include "core/error.h"
#include "kernels/squared_relu.cuh"

namespace herd::ops {
#ifdef HERD_HAVE_CUDA_KERNELS
namespace detail {
torch::Tensor squared_relu_forward_cuda(const torch::Tensor& x);
torch::Tensor squared_relu_backward_cuda(const torch::Tensor& x, const torch::Tensor& dy);
}  // namespace detail
#endif

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrain = 1 << 15;

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

torch::Tensor forward_cpu(const torch::Tensor& x) {
  auto y = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, x.scalar_type(), "squared_relu_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) yp[i] = kernels::squared_relu_fwd<Acc<scalar_t>>(xp[i]);
    });
  });
  return y;
}

torch::Tensor backward_cpu(const torch::Tensor& x, const torch::Tensor& dy) {
  auto dx = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, x.scalar_type(), "squared_relu_bwd_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* gp = dy.data_ptr<scalar_t>();
    scalar_t* out = dx.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        out[i] = kernels::squared_relu_bwd<Acc<scalar_t>>(xp[i], gp[i]);
    });
  });
  return dx;
}

struct SquaredReluFunction : torch::autograd::Function<SquaredReluFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in) {
    ctx->save_for_backward({x_in});  // the input itself, so that double backward reaches it
    const auto x = x_in.contiguous();
#ifdef HERD_HAVE_CUDA_KERNELS
    if (x.is_cuda()) return detail::squared_relu_forward_cuda(x);
#endif
    return forward_cpu(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto x = ctx->get_saved_variables()[0];
    if (!grads[0].defined()) return {torch::Tensor()};
    // A graph of the backward (double backward) needs differentiable ops.
    if (torch::GradMode::is_enabled()) return {2 * torch::relu(x) * grads[0]};
    const auto xc = x.contiguous(), dy = grads[0].contiguous();
#ifdef HERD_HAVE_CUDA_KERNELS
    if (x.is_cuda()) return {detail::squared_relu_backward_cuda(xc, dy).view(x.sizes())};
#endif
    return {backward_cpu(xc, dy).view(x.sizes())};
  }
};

}  // namespace

Support squared_relu_supports(const OpTarget& t) {
  return device_supports(t, {torch::kFloat, torch::kDouble, torch::kBFloat16});
}

Support squared_relu_supports(const torch::Tensor& x) {
  if (!x.defined() || x.layout() != torch::kStrided || x.numel() == 0)
    return Support::no("needs a non-empty strided tensor");
  return squared_relu_supports(OpTarget::of(x));
}

KernelPath squared_relu_path(const torch::Tensor& x) {
  return choose_path("squared_relu", OpTarget::of(x), squared_relu_supports(x));
}

torch::Tensor squared_relu_reference(const torch::Tensor& x) {
  return torch::relu(x).square();
}

torch::Tensor squared_relu_fused(const torch::Tensor& x) {
  const auto s = squared_relu_supports(x);
  HERD_CHECK(s.ok, "squared_relu: the fused kernel does not take ", x.scalar_type(), " on ",
             x.device(), ": ", s.why);
  return SquaredReluFunction::apply(x);
}

torch::Tensor squared_relu(const torch::Tensor& x) {
  if (squared_relu_path(x) == KernelPath::reference) return squared_relu_reference(x);
  return SquaredReluFunction::apply(x);
}

}  // namespace herd::ops
