// Device halves of the fused squared_relu (ops/squared_relu.h), called with checked inputs:
// x contiguous [rows, F], bias contiguous [F] or undefined, dy contiguous like x.
#pragma once

#include <torch/torch.h>

#include <array>

namespace herd::ops::detail {

torch::Tensor squared_relu_forward_cpu(const torch::Tensor& x, const torch::Tensor& bias);
// Returns {dx, dbias}; dbias only with a bias and need_dbias.
std::array<torch::Tensor, 2> squared_relu_backward_cpu(const torch::Tensor& x,
                                                       const torch::Tensor& bias,
                                                       const torch::Tensor& dy, bool need_dbias);

#ifdef HERD_HAVE_CUDA_KERNELS
torch::Tensor squared_relu_forward_cuda(const torch::Tensor& x, const torch::Tensor& bias);
std::array<torch::Tensor, 2> squared_relu_backward_cuda(const torch::Tensor& x,
                                                        const torch::Tensor& bias,
                                                        const torch::Tensor& dy, bool need_dbias);
#endif

}  // namespace herd::ops::detail
