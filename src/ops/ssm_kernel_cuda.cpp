// CUDA half of ssm_vandermonde: allocates, picks the current stream and calls the launchers of
// kernels/ssm_kernel.cu (which never see torch headers).
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>

#include "core/error.h"
#include "kernels/ssm_kernel.cuh"
#include "ops/ssm_kernel_impl.h"

namespace herd::ops::detail {
namespace {

using kernels::Cplx;

void check_launch(int err, const char* what) {
  HERD_CHECK(err == 0, "ssm_vandermonde: CUDA ", what,
             " failed: ", kernels::cuda_error_string(err));
}

template <typename T>
Cplx<T>* cplx_ptr(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<Cplx<T>*>(t.data_ptr<T>()) : nullptr;
}

}  // namespace

torch::Tensor ssm_kernel_forward_cuda(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L) {
  c10::DeviceGuard guard(Ct.device());
  const int64_t H = Ct.size(0), N2 = Ct.size(1);
  auto K = torch::empty({H, L}, Ct.options());
  AT_DISPATCH_FLOATING_TYPES(Ct.scalar_type(), "ssm_kernel_forward_cuda", [&] {
    check_launch(kernels::ssm_kernel_forward_cuda<scalar_t>(
                     cplx_ptr<scalar_t>(Ct), cplx_ptr<scalar_t>(w), H, N2, L,
                     K.data_ptr<scalar_t>(), at::cuda::getCurrentCUDAStream().stream()),
                 "forward");
  });
  return K;
}

std::array<torch::Tensor, 2> ssm_kernel_backward_cuda(const torch::Tensor& Ct,
                                                      const torch::Tensor& w,
                                                      const torch::Tensor& g, bool need_Ct,
                                                      bool need_w) {
  c10::DeviceGuard guard(Ct.device());
  torch::Tensor gCt, gw;
  if (need_Ct) gCt = torch::empty_like(Ct);
  if (need_w) gw = torch::empty_like(w);
  const int64_t H = Ct.size(0), N2 = Ct.size(1), L = g.size(1);
  AT_DISPATCH_FLOATING_TYPES(Ct.scalar_type(), "ssm_kernel_backward_cuda", [&] {
    check_launch(kernels::ssm_kernel_backward_cuda<scalar_t>(
                     cplx_ptr<scalar_t>(Ct), cplx_ptr<scalar_t>(w), g.data_ptr<scalar_t>(), H, N2,
                     L, cplx_ptr<scalar_t>(gCt), cplx_ptr<scalar_t>(gw),
                     at::cuda::getCurrentCUDAStream().stream()),
                 "backward");
  });
  return {gCt, gw};
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
