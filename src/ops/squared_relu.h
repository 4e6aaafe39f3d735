// Bias + squared ReLU, Primer's FFN activation after fc1: y = relu(x + bias)^2 (bias [F] over
// the last dimension, or none), dy/dx = 2 relu(x + bias), dbias = the row sum of dx.
// squared_relu() dispatches (see ops/kernel_path.h): the fused kernel of
// kernels/squared_relu.cuh on the CPU or CUDA for float, double and bfloat16, else the
// reference torch::relu(x + bias).square().
#pragma once

#include <torch/torch.h>

#include "ops/kernel_path.h"

namespace herd::ops {

// x: any shape [..., F] (any strides); bias: [F] or undefined. Returns x's shape and dtype.
torch::Tensor squared_relu(const torch::Tensor& x, const torch::Tensor& bias = {});

// Non-empty strided float/double/bfloat16 on the CPU, or on CUDA when compiled; a bias is a
// [F] tensor of x's dtype and device (callers cast it first under autocast).
Support squared_relu_supports(const torch::Tensor& x, const torch::Tensor& bias = {});
Support squared_relu_supports(const OpTarget& t);
KernelPath squared_relu_path(const torch::Tensor& x, const torch::Tensor& bias = {});

// Explicit paths for tests and benchmarks; _fused throws herd::Error when not supported.
torch::Tensor squared_relu_reference(const torch::Tensor& x, const torch::Tensor& bias = {});
torch::Tensor squared_relu_fused(const torch::Tensor& x, const torch::Tensor& bias = {});

}  // namespace herd::ops
