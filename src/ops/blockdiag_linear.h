// Block-diagonal linear layer (M2's BlockdiagLinear without shuffle): weight (nb, q, p) with
// p = ceil(in/nb), q = ceil(out/nb). The input is zero-padded to nb*p features, split into nb
// contiguous blocks, block b is multiplied by weight[b] (x_b W_b^T), the nb*q outputs are
// flattened in block order and truncated to out_features. No permutation between blocks.
#pragma once

#include <torch/torch.h>

#include "ops/kernel_path.h"

namespace herd::ops {

// x: [..., in] with in <= nb*p; weight: (nb, q, p); out_features <= nb*q.
// Returns [..., out_features] (+ bias when defined). Dispatches (ops/kernel_path.h): the
// fused path multiplies each block straight between strided views of x, y and their
// gradients (nb GEMMs, no transposed or padded copies, forward and backward); the reference
// pads, transposes and runs one bmm.
torch::Tensor blockdiag_linear(const torch::Tensor& x, const torch::Tensor& weight,
                               int64_t out_features, const torch::Tensor& bias = {});

// The fused path takes in == nb*p and out_features == nb*q (no padding or truncation),
// float32/float64 on the CPU or CUDA, one dtype and device, autocast off.
Support blockdiag_linear_supports(const torch::Tensor& x, const torch::Tensor& weight,
                                  int64_t out_features, const torch::Tensor& bias = {});
Support blockdiag_linear_supports(const OpTarget& t);
KernelPath blockdiag_linear_path(const torch::Tensor& x, const torch::Tensor& weight,
                                 int64_t out_features, const torch::Tensor& bias = {});
torch::Tensor blockdiag_linear_reference(const torch::Tensor& x, const torch::Tensor& weight,
                                         int64_t out_features, const torch::Tensor& bias = {});
torch::Tensor blockdiag_linear_fused(const torch::Tensor& x, const torch::Tensor& weight,
                                     int64_t out_features, const torch::Tensor& bias = {});

}  // namespace herd::ops

namespace herd {

class BlockdiagLinearImpl : public torch::nn::Module {
 public:
  BlockdiagLinearImpl(int64_t in_features, int64_t out_features, int64_t nblocks, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);  // [..., in] -> [..., out]

  int64_t in_features, out_features, nblocks;
  torch::Tensor weight;  // (nblocks, ceil(out/nb), ceil(in/nb))
  torch::Tensor bias;    // (out) or undefined
};
TORCH_MODULE(BlockdiagLinear);

}  // namespace herd
