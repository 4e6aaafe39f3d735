// CUDA half of squared_relu: allocation, current stream, and kernels/squared_relu.cu.
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>

#include "core/error.h"
#include "kernels/squared_relu.cuh"
#include "ops/squared_relu_impl.h"

namespace herd::ops::detail {
namespace {

void check_launch(int err, const char* what) {
  HERD_CHECK(err == 0, "squared_relu: CUDA ", what, " failed: ", kernels::cuda_error_string(err));
}

// The launchers take bfloat16 as its uint16_t bits; float and double pass through.
template <typename F>
void dispatch(torch::ScalarType t, F&& f) {
  if (t == torch::kFloat) return f(float{});
  if (t == torch::kDouble) return f(double{});
  HERD_CHECK(t == torch::kBFloat16, "squared_relu: CUDA kernel has no ", t, " version");
  f(uint16_t{});
}

template <typename T>
T* raw(const torch::Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

// [rows, F] of x: F is the bias length (the last dim), or the whole tensor without a bias.
std::pair<int64_t, int64_t> rows_cols(const torch::Tensor& x, const torch::Tensor& bias) {
  const int64_t F = bias.defined() ? bias.numel() : x.numel();
  return {x.numel() / F, F};
}

}  // namespace

torch::Tensor squared_relu_forward_cuda(const torch::Tensor& x, const torch::Tensor& bias) {
  c10::DeviceGuard guard(x.device());
  auto y = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  const auto [rows, F] = rows_cols(x, bias);
  dispatch(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    check_launch(kernels::squared_relu_forward_cuda<T>(raw<T>(x), raw<T>(bias), raw<T>(y), rows, F,
                                                       at::cuda::getCurrentCUDAStream().stream()),
                 "forward");
  });
  return y;
}

std::array<torch::Tensor, 2> squared_relu_backward_cuda(const torch::Tensor& x,
                                                        const torch::Tensor& bias,
                                                        const torch::Tensor& dy, bool need_dbias) {
  c10::DeviceGuard guard(x.device());
  auto dx = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  const auto [rows, F] = rows_cols(x, bias);
  torch::Tensor db, partial;
  if (bias.defined() && need_dbias) {
    db = torch::empty_like(bias);
    // Block partials in the kernel's accumulation type (float for float and bfloat16).
    const auto acc = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    partial =
        torch::empty({std::min(rows, kernels::kSquaredReluBiasBlocks), F}, x.options().dtype(acc));
  }
  dispatch(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    check_launch(kernels::squared_relu_backward_cuda<T>(
                     raw<T>(x), raw<T>(bias), raw<T>(dy), raw<T>(dx), raw<T>(db),
                     partial.defined() ? partial.data_ptr() : nullptr, rows, F,
                     at::cuda::getCurrentCUDAStream().stream()),
                 "backward");
  });
  return {dx, db};
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
