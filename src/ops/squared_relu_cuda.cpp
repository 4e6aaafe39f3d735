// CUDA half of squared_relu: allocation, current stream, and kernels/squared_relu.cu.
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>
#include <torch/torch.h>

#include <cstdint>

#include "core/error.h"
#include "kernels/squared_relu.cuh"

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
  return static_cast<T*>(t.data_ptr());
}

}  // namespace

torch::Tensor squared_relu_forward_cuda(const torch::Tensor& x) {
  c10::DeviceGuard guard(x.device());
  auto y = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  dispatch(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    check_launch(kernels::squared_relu_forward_cuda<T>(raw<T>(x), raw<T>(y), x.numel(),
                                                       at::cuda::getCurrentCUDAStream().stream()),
                 "forward");
  });
  return y;
}

torch::Tensor squared_relu_backward_cuda(const torch::Tensor& x, const torch::Tensor& dy) {
  c10::DeviceGuard guard(x.device());
  auto dx = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  dispatch(x.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    check_launch(
        kernels::squared_relu_backward_cuda<T>(raw<T>(x), raw<T>(dy), raw<T>(dx), x.numel(),
                                               at::cuda::getCurrentCUDAStream().stream()),
        "backward");
  });
  return dx;
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
