// Convolution kernels of H3's two state-space models (safari SSKernelShift / SSKernelDiag).
// Parameter shapes match the reference exactly so that weights load without reshaping.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace herd::ops {

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
//   K[h, l] = 2 Re( sum_n Ct[h,n] exp(l log dA[h,n]) )
// with A = -exp(inv_A_real) + i A_imag and dt = exp(log_dt).
class DiagSSMKernelImpl : public torch::nn::Module {
 public:
  // measure: "diag-lin" (S4D-Lin: A = -1/2 + i pi n) or "diag-inv" (S4D-Inv);
  // log_dt ~ U[log dt_min, log dt_max]; B = 1; C ~ complex normal (times B).
  DiagSSMKernelImpl(int64_t H, int64_t N, const std::string& measure, double dt_min, double dt_max);
  torch::Tensor forward(int64_t L);  // (H, L)
  torch::Tensor C;                   // (1, H, N/2, 2) (re, im)
  torch::Tensor log_dt;              // (H)
  torch::Tensor B;                   // (H, N/2, 2) (re, im)
  torch::Tensor inv_A_real;          // (H, N/2)
  torch::Tensor A_imag;              // (H, N/2)
};
TORCH_MODULE(DiagSSMKernel);

}  // namespace herd::ops
