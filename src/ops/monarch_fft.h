// The FFT convolution as Monarch-decomposed matrix products (FlashFFTConv, Fu et al. 2023): a
// length-N DFT with N = N1 N2 is  x[N1, N2] (n = N2 n1 + n2)  ->  A = F_N1 x  ->  B = A . T
// (twiddles T[k1, n2] = w_N^(n2 k1))  ->  C = B F_N2,  with C[k1, k2] = X[k1 + N1 k2]. The
// convolution multiplies spectra in that (permuted) layout and inverts the steps with the
// conjugate matrices, so no transposition of the whole sequence ever happens: every step is a
// small dense GEMM (tensor cores on a GPU) or an elementwise product.
//
// This is the math and an ATen-level path (torch matmuls, so CPU and cuBLAS alike, in the
// operands' dtype: bfloat16 GEMMs accumulate in float); the fused tensor-core kernel that
// keeps the steps in shared memory (issue 11) builds on it and is tested against it.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace herd::ops {

struct MonarchFft {
  int64_t N = 0, N1 = 0, N2 = 0;  // N = N1 N2, both powers of two, N1 >= N2
  torch::Tensor f1r, f1i;         // F_N1 [N1, N1]
  torch::Tensor f2r, f2i;         // F_N2 [N2, N2]
  torch::Tensor twr, twi;         // T [N1, N2]
  // The factors for a power-of-two N >= 2, in float64 (cast per call).
  static MonarchFft plan(int64_t N);
};

// C = DFT of real x [..., N] in the Monarch layout: (re, im), each [..., N1, N2]. GEMMs run in
// `gemm` (float32, float64 or bfloat16), elementwise products in float32 (float64 for float64).
std::pair<torch::Tensor, torch::Tensor> monarch_dft(const torch::Tensor& x, const MonarchFft& p,
                                                    torch::ScalarType gemm);
// The real part of the inverse of a Monarch-layout spectrum: [..., N].
torch::Tensor monarch_idft_real(const torch::Tensor& re, const torch::Tensor& im,
                                const MonarchFft& p, torch::ScalarType gemm);

// y = k * u + D u (causal, exact length-L linear convolution), u [B, C, L], k [C, Lk <= L]
// (shorter kernels are zero-padded), D [C] or undefined; N = the power of two >= 2L.
// Returns float32 (float64 for float64 inputs) [B, C, L]. gemm: the GEMMs' dtype.
torch::Tensor monarch_fft_conv(const torch::Tensor& u, const torch::Tensor& k,
                               const torch::Tensor& D, torch::ScalarType gemm);

}  // namespace herd::ops
