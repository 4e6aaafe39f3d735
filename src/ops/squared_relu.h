// Squared ReLU, Primer's FFN activation: y = relu(x)^2, dy/dx = 2 relu(x).
// squared_relu() dispatches (see ops/kernel_path.h): the fused kernel of
// kernels/squared_relu.cuh on CUDA for float, double and bfloat16, else the reference
// torch::relu(x).square(). The CPU kernel exists and is tested but is not dispatched to: it
// showed no clear win over ATen's vectorised ops on the CPU.
#pragma once

#include <torch/torch.h>

#include "ops/kernel_path.h"

namespace herd::ops {

// Any shape; returns a tensor of x's shape and dtype.
torch::Tensor squared_relu(const torch::Tensor& x);

// Non-empty strided float/double/bfloat16 on the CPU, or on CUDA when compiled.
Support squared_relu_supports(const torch::Tensor& x);
Support squared_relu_supports(const OpTarget& t);
KernelPath squared_relu_path(const torch::Tensor& x);

// Explicit paths for tests and benchmarks; _fused throws herd::Error when not supported.
torch::Tensor squared_relu_reference(const torch::Tensor& x);
torch::Tensor squared_relu_fused(const torch::Tensor& x);

}  // namespace herd::ops
