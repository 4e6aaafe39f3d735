// Depthwise causal convolution along the sequence (Hyena/M2 short filters, Primer dconv):
//   y[b, c, t] = sum_{j<K} w[c, 0, j] * x[b, c, t - (K-1) + j]  (+ bias[c]),  x[., ., <0] = 0
// i.e. nn.Conv1d(C, C, K, groups=C, padding=K-1) keeping the first L outputs;
// w[..., K-1] multiplies the current step (cross-correlation, not a flipped convolution).
// short_conv() dispatches (see ops/kernel_path.h): the fused kernel of kernels/short_conv.cuh
// on CUDA or CPU when short_conv_supports() the inputs, else the ATen conv1d reference.
#pragma once

#include <torch/torch.h>

#include "ops/kernel_path.h"

namespace herd::ops {

// x: [B, C, L] (any strides); weight: [C, 1, K]; bias: [C] or undefined. Returns [B, C, L].
torch::Tensor short_conv(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias = {});

// The fused kernel takes these inputs: one device (CPU, or CUDA when compiled), x float32,
// float64 or bfloat16 (CPU and CUDA) with taps of x's dtype or float32, well-formed shapes,
// 1 <= K <= 64, non-empty. Under autocast short_conv() hands it x in the autocast dtype.
Support short_conv_supports(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias = {});
// The target and filter-width part of that rule (what `herd info` reports).
Support short_conv_supports(const OpTarget& t, int64_t K);

// The path short_conv() takes for these inputs.
KernelPath short_conv_path(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias = {});

// Explicit paths for tests and benchmarks. _fused runs the kernel on x's device (an autograd
// Function whose backward is fused too) and throws herd::Error when it is not supported.
torch::Tensor short_conv_reference(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias = {});
torch::Tensor short_conv_fused(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias = {});

}  // namespace herd::ops
