// Convolution kernels of H3's two state-space models (safari SSKernelShift / SSKernelDiag).
// Parameter shapes match the reference exactly so that weights load without reshaping.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "ops/kernel_path.h"

namespace herd::ops {

// The diagonal SSM's kernel from its discretised modes, per channel h (H channels, N2 modes):
//   K[h, l] = 2 Re( sum_n Ct[h,n] exp(l w[h,n]) ),  l = 0..L-1
// Ct, w: complex (H, N2) of one dtype (complex64 or complex128, any strides); returns the real
// (H, L). ssm_vandermonde() dispatches (see ops/kernel_path.h): the fused kernel of
// kernels/ssm_kernel.cuh (no (H, N2, L) temporaries, backward fused too) on the CPU or CUDA
// when ssm_vandermonde_supports() the inputs, else the ATen reference, which materializes
// the Vandermonde matrix exp(l w) of (H, N2, L).
torch::Tensor ssm_vandermonde(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L);

// The fused kernel takes: Ct and w complex64/complex128 of one dtype and device (CPU, or CUDA
// when compiled), both (H, N2) with H, N2 >= 1, and L >= 1. Autocast does not matter (the
// reference's complex ops do not autocast either).
Support ssm_vandermonde_supports(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L);
// The device and dtype part of that rule; t.dtype is the real dtype (float or double).
Support ssm_vandermonde_supports(const OpTarget& t);
KernelPath ssm_vandermonde_path(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L);

// Explicit paths for tests and benchmarks; _fused throws herd::Error when not supported.
torch::Tensor ssm_vandermonde_reference(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L);
torch::Tensor ssm_vandermonde_fused(const torch::Tensor& Ct, const torch::Tensor& w, int64_t L);

// Shift SSM: A is the shift matrix, so the kernel is the cross-correlation of B and C:
//   K[h, j] = sum_{n=0}^{N-1-j} B[h,n] C[h,n+j]   for j < N,  0 for j >= N.
class ShiftSSMKernelImpl : public torch::nn::Module {
 public:
  // Init: B = e_1 (so K = C), C as torch.nn.Conv1d's kaiming_uniform(a=sqrt(5)) on [H, 1, N].
  ShiftSSMKernelImpl(int64_t H, int64_t N);
  torch::Tensor forward(int64_t L);  // (H, L)
  torch::Tensor B;                   // (H, N)
  torch::Tensor C;                   // (1, H, N)
};
TORCH_MODULE(ShiftSSMKernel);

// Diagonal SSM (S4D), N/2 complex modes with implicit conjugates, bilinear discretisation:
//   dtA = A dt;  Ct = B C dt / (1 - dtA/2);  dA = (1 + dtA/2) / (1 - dtA/2)
//   K[h, l] = 2 Re( sum_n Ct[h,n] exp(l log dA[h,n]) )     (ssm_vandermonde)
// with A = -exp(inv_A_real) + i A_imag and dt = exp(log_dt). The (H, N/2) prologue is ATen,
// so autograd reaches every parameter through ssm_vandermonde's gradients w.r.t. Ct and w.
class DiagSSMKernelImpl : public torch::nn::Module {
 public:
  // measure: "diag-lin" (S4D-Lin: A = -1/2 + i pi n) or "diag-inv" (S4D-Inv);
  // log_dt ~ U[log dt_min, log dt_max]; B = 1; C ~ complex normal (times B).
  DiagSSMKernelImpl(int64_t H, int64_t N, const std::string& measure, double dt_min, double dt_max);
  torch::Tensor forward(int64_t L);  // (H, L)
  // (Ct, dA), complex (H, N/2): K[l] = 2 Re(sum_n Ct_n dA_n^l); the recurrent form for generation.
  std::pair<torch::Tensor, torch::Tensor> discretized();
  torch::Tensor C;           // (1, H, N/2, 2) (re, im)
  torch::Tensor log_dt;      // (H)
  torch::Tensor B;           // (H, N/2, 2) (re, im)
  torch::Tensor inv_A_real;  // (H, N/2)
  torch::Tensor A_imag;      // (H, N/2)
};
TORCH_MODULE(DiagSSMKernel);

// Im(A) of the S4D inits for N/2 modes n = 0..N/2-1 (float64, (N/2)):
// "linear" (S4D-Lin) pi n; "inverse" (S4D-Inv) N/pi (N/(1+2n) - 1). Throws on other names.
torch::Tensor s4d_imag_init(const std::string& scaling, int64_t N);

// S4D's diagonal SSM (safari ssm/s4d.py S4DKernel + SSKernelDiag, channels 1), N/2 complex
// modes with implicit conjugates, zero-order hold:
//   dtA = A dt;  Ct = C (exp(dtA) - 1) / A
//   K[h, l] = 2 Re( sum_n Ct[h,n] exp(l dtA[h,n]) )                 (ssm_vandermonde)
// with A = -exp(log_w_real) + i w_imag shared by n_ssm copies (channel h uses row h % n_ssm,
// safari's repeat '(v t) n') and dt = exp(log_dt). B is folded into C at init, as safari's.
class S4DKernelImpl : public torch::nn::Module {
 public:
  // Init as safari's random_dplr: Re(A) = -1/2, Im(A) by `scaling` ("inverse" | "linear"),
  // B ~ complex normal normalised by sqrt(2 sum |B/A|^2), C ~ complex normal times B,
  // log_dt ~ U[log dt_min, log dt_max].
  S4DKernelImpl(int64_t H, int64_t N, int64_t n_ssm, const std::string& scaling, double dt_min,
                double dt_max);
  torch::Tensor forward(int64_t L);  // (H, L)
  // (Ct, dA = exp(dtA)), complex (H, N/2): the recurrent form for generation.
  std::pair<torch::Tensor, torch::Tensor> discretized();
  torch::Tensor C;           // (1, H, N/2, 2) (re, im)
  torch::Tensor log_dt;      // (H)
  torch::Tensor log_w_real;  // (n_ssm, N/2)
  torch::Tensor w_imag;      // (n_ssm, N/2)

 private:
  std::pair<torch::Tensor, torch::Tensor> zoh();  // (Ct, dtA)
};
TORCH_MODULE(S4DKernel);

}  // namespace herd::ops
