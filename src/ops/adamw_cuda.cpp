// CUDA half of the fused AdamW step: one kernels/adamw.cu launch per parameter on the current
// stream of its device.
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>

#include "core/error.h"
#include "kernels/adamw.cuh"
#include "ops/adamw_impl.h"

namespace herd::ops::detail {
namespace {

template <typename T>
void step_one(const AdamWParam& a) {
  const auto& o = *a.options;
  auto& st = *a.state;
  st.step(st.step() + 1);
  const auto s = kernels::adamw_scalars<T>(o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()),
                                           o.eps(), adamw_decay_rate(a), st.step());
  const int err = kernels::adamw_step_cuda<T>(
      a.param.data_ptr<T>(), a.grad.data_ptr<T>(), st.exp_avg().data_ptr<T>(),
      st.exp_avg_sq().data_ptr<T>(), a.param.numel(), s,
      at::cuda::getCurrentCUDAStream(a.param.device().index()).stream());
  HERD_CHECK(err == 0, "adamw: CUDA step failed: ", kernels::cuda_error_string(err));
}

}  // namespace

void adamw_step_cuda(const std::vector<AdamWParam>& params) {
  for (const auto& a : params) {
    c10::DeviceGuard guard(a.param.device());
    if (a.param.scalar_type() == torch::kDouble)
      step_one<double>(a);
    else
      step_one<float>(a);
  }
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
