// Long convolutions along the sequence axis (Hyena, H3, M2), exact and linear (never circular):
//   causal:         y[c,t] = sum_{s<=t} k[c,t-s] x[c,s]                               + D[c] x[c,t]
//   bidirectional:  y[c,t] = sum_{s<=t} kf[c,t-s] x[c,s] + sum_{s>t} kr[c,s-t-1] x[c,s] + D[c]
//   x[c,t]
// The bidirectional form is M2's: kr[0] is the tap for s = t+1 and kr[L-1] never contributes.
// Layout: x [..., C, L] (usually [B, C, L]); kernels [C, Lk]; taps beyond L are ignored and
// missing taps are zero. D [C] or undefined. Differentiable through torch's autograd.
// Half/bfloat16 inputs are convolved in float32; the result has x's dtype.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace herd::ops {

// FFT path (torch::fft::rfft/irfft) with a transform size >= the linear-convolution length.
torch::Tensor fft_conv(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& D = {});
torch::Tensor fft_conv_bidirectional(const torch::Tensor& x, const torch::Tensor& kf,
                                     const torch::Tensor& kr, const torch::Tensor& D = {});

// Direct O(L^2) sums of the same formulas: the specification the FFT path is tested against.
torch::Tensor long_conv_direct(const torch::Tensor& x, const torch::Tensor& k,
                               const torch::Tensor& D = {});
torch::Tensor long_conv_bidirectional_direct(const torch::Tensor& x, const torch::Tensor& kf,
                                             const torch::Tensor& kr, const torch::Tensor& D = {});

// Disables autocast for `device` in a scope: implicit filters (sin(w x) with w ~ 10) and SSM
// kernels lose too much in bfloat16, so they are generated in the parameters' dtype.
class AutocastOff {
 public:
  explicit AutocastOff(c10::DeviceType device);
  ~AutocastOff();
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  c10::DeviceType device_;
  bool was_enabled_;
};

// Smallest n' >= n whose prime factors are all in {2, 3, 5, 7} (fast for pocketfft and cuFFT).
int64_t fft_fast_size(int64_t n);

}  // namespace herd::ops
