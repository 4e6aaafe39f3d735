// The gated long convolution of Hyena, H3 and M2 as one op (math: kernels/long_conv.cuh):
//   y = post * ( k * (x pre) + D (x pre) )          k * u: exact linear convolution along L
// with optional gates `pre` and `post`, the skip D (the reference code's filter `bias`), and
// M2's bidirectional form when `k_rev` is given (see ops/fft_conv.h for the tap layout).
// x, pre, post: [B, C, L], any strides; k, k_rev: [C, Lk]; D: [C]. Returns [B, C, L] in x's
// dtype (half/bfloat16 inputs are convolved in float32).
//
// long_conv() dispatches (ops/kernel_path.h): the fused CPU path runs one row at a time
// through FFTW with the gates, skip and kernel spectrum applied around the transforms, in
// parallel over channel tiles, holding no [B, C, n] temporaries; its backward recomputes
// the input spectrum instead of storing it. Its result is laid out [B, L, C] in memory (a
// transposed view), which is what the blocks' output projections read. Anything it does not
// take runs the reference: today's ATen composition of ops::fft_conv.
#pragma once

#include <torch/torch.h>

#include "ops/kernel_path.h"

namespace herd::ops {

struct LongConvInputs {
  torch::Tensor x = {};      // [B, C, L]
  torch::Tensor k = {};      // [C, Lk] causal taps
  torch::Tensor D = {};      // [C] or undefined
  torch::Tensor pre = {};    // [B, C, L] or undefined: u = x * pre
  torch::Tensor post = {};   // [B, C, L] or undefined: y = post * z
  torch::Tensor k_rev = {};  // [C, Lk'] anti-causal taps (bidirectional) or undefined
};

torch::Tensor long_conv(const LongConvInputs& in);

// What the fused path takes: CPU, or CUDA when compiled (cuFFT with the gates, skip and
// kernel products in kernels around it), x/pre/post one dtype of float32,
// float64 or bfloat16 and the kernels/D of the compute dtype (float32; float64 for float64),
// consistent shapes, a transform length <= 2^24.
Support long_conv_supports(const LongConvInputs& in);
Support long_conv_supports(const OpTarget& t);  // the target part (what herd info reports)
KernelPath long_conv_path(const LongConvInputs& in);

// Explicit paths for tests and benchmarks; _fused throws herd::Error when not supported.
torch::Tensor long_conv_reference(const LongConvInputs& in);
torch::Tensor long_conv_fused(const LongConvInputs& in);

// The transform length both paths use: the smallest 7-smooth n with no wrap into [0, L).
int64_t long_conv_fft_size(int64_t L, int64_t Lk, int64_t Lk_rev /* -1: causal */);

}  // namespace herd::ops
