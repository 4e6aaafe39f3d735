// CUDA half of the per-row cross-entropy pass: current stream and kernels/cross_entropy.cu.
#ifdef HERD_HAVE_CUDA_KERNELS

#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>
#include <torch/torch.h>

#include <cstdint>

#include "core/error.h"
#include "kernels/cross_entropy.cuh"
#include "ops/cross_entropy_impl.h"

namespace herd::ops::detail {

std::pair<torch::Tensor, torch::Tensor> cross_entropy_rows_cuda(torch::Tensor& z,
                                                                const torch::Tensor& targets,
                                                                int64_t ignore_index, double scale,
                                                                bool grad, bool want_argmax) {
  c10::DeviceGuard guard(z.device());
  const int64_t R = z.size(0), V = z.size(1);
  const auto acc = z.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto loss = torch::empty({R}, z.options().dtype(acc));
  torch::Tensor argmax;
  if (want_argmax) argmax = torch::empty({R}, targets.options());
  int64_t* am = want_argmax ? argmax.data_ptr<int64_t>() : nullptr;
  const int64_t* tp = targets.data_ptr<int64_t>();
  void* s = at::cuda::getCurrentCUDAStream().stream();
  int err = 0;
  switch (z.scalar_type()) {
    case torch::kFloat:
      err = kernels::cross_entropy_rows_cuda<float>(z.data_ptr<float>(), R, V, tp, ignore_index,
                                                    scale, grad, loss.data_ptr(), am, s);
      break;
    case torch::kDouble:
      err = kernels::cross_entropy_rows_cuda<double>(z.data_ptr<double>(), R, V, tp, ignore_index,
                                                     scale, grad, loss.data_ptr(), am, s);
      break;
    case torch::kBFloat16:
      err = kernels::cross_entropy_rows_cuda<uint16_t>(static_cast<uint16_t*>(z.data_ptr()), R, V,
                                                       tp, ignore_index, scale, grad,
                                                       loss.data_ptr(), am, s);
      break;
    default:
      HERD_CHECK(false, "cross_entropy: CUDA kernel has no ", z.scalar_type(), " version");
  }
  HERD_CHECK(err == 0, "cross_entropy: CUDA row pass failed: ", kernels::cuda_error_string(err));
  return {loss, argmax};
}

}  // namespace herd::ops::detail

#endif  // HERD_HAVE_CUDA_KERNELS
