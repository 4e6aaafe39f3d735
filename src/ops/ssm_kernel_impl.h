// Device halves of the fused ssm_vandermonde (ops/ssm_kernel.h), called with checked inputs:
// Ct, w contiguous real (H, N/2, 2) views of complex (H, N/2) tensors, g contiguous (H, L).
#pragma once

#include <torch/torch.h>

#include <array>

namespace herd::ops::detail {

// K (H, L) of Ct's real dtype.
torch::Tensor ssm_kernel_forward_cpu(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L);
// {gCt, gw} as real (H, N/2, 2); entries not wanted (need_*) are undefined.
std::array<torch::Tensor, 2> ssm_kernel_backward_cpu(const torch::Tensor& Ct,
                                                     const torch::Tensor& w, const torch::Tensor& g,
                                                     bool need_Ct, bool need_w);

#ifdef HERD_HAVE_CUDA_KERNELS
torch::Tensor ssm_kernel_forward_cuda(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L);
std::array<torch::Tensor, 2> ssm_kernel_backward_cuda(const torch::Tensor& Ct,
                                                      const torch::Tensor& w,
                                                      const torch::Tensor& g, bool need_Ct,
                                                      bool need_w);
#endif

}  // namespace herd::ops::detail
