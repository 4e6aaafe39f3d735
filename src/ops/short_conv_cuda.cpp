// CUDA half of short_conv: allocates, picks the current stream and calls the launchers of
// kernels/short_conv.cu (which never see torch headers).
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>

#include "core/error.h"
#include "kernels/short_conv.cuh"
#include "ops/short_conv_impl.h"

namespace herd::ops::detail {
namespace {

kernels::Strided3 dims(const torch::Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.stride(0), t.stride(1), t.stride(2)};
}

void check_launch(int err, const char* what) {
  HERD_CHECK(err == 0, "short_conv: CUDA ", what, " failed: ", kernels::cuda_error_string(err));
}

template <typename T>
T* ptr_or_null(torch::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

}  // namespace

torch::Tensor short_conv_forward_cuda(const torch::Tensor& x, const torch::Tensor& w,
                                      const torch::Tensor& bias) {
  c10::DeviceGuard guard(x.device());
  auto y = torch::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "short_conv_forward_cuda", [&] {
    const scalar_t* bp = bias.defined() ? bias.data_ptr<scalar_t>() : nullptr;
    check_launch(kernels::short_conv_forward_cuda<scalar_t>(
                     x.data_ptr<scalar_t>(), dims(x), w.data_ptr<scalar_t>(), w.size(1), bp,
                     y.data_ptr<scalar_t>(), at::cuda::getCurrentCUDAStream().stream()),
                 "forward");
  });
  return y;
}

std::array<torch::Tensor, 3> short_conv_backward_cuda(const torch::Tensor& x,
                                                      const torch::Tensor& w,
                                                      const torch::Tensor& dy, bool need_dx,
                                                      bool need_dw, bool need_dbias) {
  c10::DeviceGuard guard(x.device());
  torch::Tensor dx, dw, db;
  if (need_dx) dx = torch::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  if (need_dw) dw = torch::empty_like(w);
  if (need_dbias) db = torch::empty({x.size(1)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "short_conv_backward_cuda", [&] {
    check_launch(
        kernels::short_conv_backward_cuda<scalar_t>(
            x.data_ptr<scalar_t>(), dims(x), w.data_ptr<scalar_t>(), w.size(1),
            dy.data_ptr<scalar_t>(), dims(dy), ptr_or_null<scalar_t>(dx), ptr_or_null<scalar_t>(dw),
            ptr_or_null<scalar_t>(db), at::cuda::getCurrentCUDAStream().stream()),
        "backward");
  });
  return {dx, dw, db};
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
