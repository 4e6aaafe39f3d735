// Residual add + LayerNorm in one pass: given the residual stream h and a branch's output delta,
//   sum = h + delta,  normed = layer_norm(sum) over the last dimension (weight, bias, eps)
// the pre-norm chain's "x = x + f(...); ln(x)" and the post-norm "ln(x + f(x))". Backward is
// one pass too (d sum from both outputs), dweight/dbias reduced in a fixed order.
// add_layer_norm() dispatches (see ops/kernel_path.h): the fused kernel of
// kernels/add_layer_norm.cuh on the CPU or CUDA, else the reference (h + delta, then
// torch::layer_norm).
#pragma once

#include <torch/torch.h>

#include "ops/kernel_path.h"

namespace herd::ops {

struct AddNorm {
  torch::Tensor sum;     // h + delta (h itself without a delta)
  torch::Tensor normed;  // layer_norm(sum)
};

// h: [..., D] (any strides); delta: h's shape, or undefined (a plain LayerNorm, sum = h);
// weight, bias: [D]. Both results have h's shape and dtype.
AddNorm add_layer_norm(const torch::Tensor& h, const torch::Tensor& delta,
                       const torch::Tensor& weight, const torch::Tensor& bias, double eps);
// The same with a LayerNorm module's parameters (one normalized dimension, affine).
AddNorm add_layer_norm(const torch::Tensor& h, const torch::Tensor& delta,
                       const torch::nn::LayerNorm& ln);

// The fused kernel takes: non-empty float/double/bfloat16 h on the CPU (or CUDA when
// compiled); delta of h's shape and dtype, or bfloat16 with a float h (autocast); weight and
// bias [D] of h's dtype, all on one device.
Support add_layer_norm_supports(const torch::Tensor& h, const torch::Tensor& delta,
                                const torch::Tensor& weight, const torch::Tensor& bias);
Support add_layer_norm_supports(const OpTarget& t);
KernelPath add_layer_norm_path(const torch::Tensor& h, const torch::Tensor& delta,
                               const torch::Tensor& weight, const torch::Tensor& bias);

// Explicit paths for tests and benchmarks; _fused throws herd::Error when not supported.
AddNorm add_layer_norm_reference(const torch::Tensor& h, const torch::Tensor& delta,
                                 const torch::Tensor& weight, const torch::Tensor& bias,
                                 double eps);
AddNorm add_layer_norm_fused(const torch::Tensor& h, const torch::Tensor& delta,
                             const torch::Tensor& weight, const torch::Tensor& bias, double eps);

}  // namespace herd::ops
