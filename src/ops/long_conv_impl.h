// Device halves of the fused long convolution (ops/long_conv.h), called with checked inputs.
#pragma once

#include <torch/torch.h>

#include "ops/long_conv.h"

namespace herd::ops::detail {

struct LongConvGrads {
  torch::Tensor dx, dk, dD, dpre, dpost, dk_rev;  // undefined where not asked for
};

struct LongConvNeeds {
  bool dx = false, dk = false, dD = false, dpre = false, dpost = false, dk_rev = false;
};

// y [B, C, L] viewing [B, L, C] memory; n is long_conv_fft_size of the inputs.
torch::Tensor long_conv_forward_cpu(const LongConvInputs& in, int64_t n);
LongConvGrads long_conv_backward_cpu(const LongConvInputs& in, const torch::Tensor& dy, int64_t n,
                                     const LongConvNeeds& needs);

#ifdef HERD_HAVE_CUDA_KERNELS
torch::Tensor long_conv_forward_cuda(const LongConvInputs& in, int64_t n);
LongConvGrads long_conv_backward_cuda(const LongConvInputs& in, const torch::Tensor& dy, int64_t n,
                                      const LongConvNeeds& needs);
#endif

}  // namespace herd::ops::detail
