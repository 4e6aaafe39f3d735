// Device halves of the fused short_conv (ops/short_conv.h), called with checked inputs:
// x [B, C, L] any strides, w [C, K] contiguous, bias [C] contiguous or undefined, dy any strides.
#pragma once

#include <torch/torch.h>

#include <array>

namespace herd::ops::detail {

torch::Tensor short_conv_forward_cpu(const torch::Tensor& x, const torch::Tensor& w,
                                     const torch::Tensor& bias);
// Returns {dx, dw [C, K], dbias}; entries not wanted (need_*) are undefined.
std::array<torch::Tensor, 3> short_conv_backward_cpu(const torch::Tensor& x, const torch::Tensor& w,
                                                     const torch::Tensor& dy, bool need_dx,
                                                     bool need_dw, bool need_dbias);

#ifdef HERD_HAVE_CUDA_KERNELS
torch::Tensor short_conv_forward_cuda(const torch::Tensor& x, const torch::Tensor& w,
                                      const torch::Tensor& bias);
std::array<torch::Tensor, 3> short_conv_backward_cuda(const torch::Tensor& x,
                                                      const torch::Tensor& w,
                                                      const torch::Tensor& dy, bool need_dx,
                                                      bool need_dw, bool need_dbias);
#endif

}  // namespace herd::ops::detail
