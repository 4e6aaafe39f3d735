// Depthwise causal convolution along the sequence (Hyena/M2 short filters, Primer dconv):
//   y[b, c, t] = sum_{j<K} w[c, 0, j] * x[b, c, t - (K-1) + j]  (+ bias[c]),  x[., ., <0] = 0
// i.e. nn.Conv1d(C, C, K, groups=C, padding=K-1) keeping the first L outputs;
// w[..., K-1] multiplies the current step (cross-correlation, not a flipped convolution).
#pragma once

#include <torch/torch.h>

namespace herd::ops {

// x: [B, C, L]; weight: [C, 1, K]; bias: [C] or undefined. Returns [B, C, L].
torch::Tensor short_conv(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias = {});

}  // namespace herd::ops
