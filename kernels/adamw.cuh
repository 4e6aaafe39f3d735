// One AdamW step of one element, in the order of operations of torch::optim::AdamW::step
// (ATen's add_(g, alpha) is a fused multiply-add; so are the two moment updates here):
//   p = p * (1 - rate)                                      weight decay, when rate != 0
//         rate = lr * wd (torch's AdamW) or lr / initial_lr * wd (composer's DecoupledAdamW)
//   m = m * beta1 + (1 - beta1) * g
//   v = v * beta2 + ((1 - beta2) * g) * g
//   p = p + (-lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)   bc_i = 1 - beta_i^step
// The scalars are rounded to T as ATen rounds a double scalar for a T tensor.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

template <typename T>
struct AdamWScalars {
  T decay;       // 1 - decay_rate
  bool decayed;  // decay_rate != 0
  T beta1, one_minus_beta1, beta2, one_minus_beta2;
  T neg_step_size;  // -lr / bc1
  T sqrt_bc2;       // sqrt(bc2)
  T eps;
};

// The scalars of a parameter at `step` (counted from 1, after the increment); decay_rate is
// what one step takes off the parameter's relative size (ops::adamw_decay_rate).
template <typename T>
inline AdamWScalars<T> adamw_scalars(double lr, double beta1, double beta2, double eps,
                                     double decay_rate, int64_t step) {
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  return {static_cast<T>(1 - decay_rate),
          decay_rate != 0,
          static_cast<T>(beta1),
          static_cast<T>(1 - beta1),
          static_cast<T>(beta2),
          static_cast<T>(1 - beta2),
          static_cast<T>(-(lr / bc1)),
          static_cast<T>(std::sqrt(bc2)),
          static_cast<T>(eps)};
}

template <typename T>
HERD_HD inline void adamw_point(T& p, T g, T& m, T& v, const AdamWScalars<T>& s) {
  T pv = p;
  if (s.decayed) pv = pv * s.decay;
#if defined(__CUDA_ARCH__)
  const T mv = fma(g, s.one_minus_beta1, m * s.beta1);
  const T vv = fma(s.one_minus_beta2 * g, g, v * s.beta2);
  const T denom = sqrt(vv) / s.sqrt_bc2 + s.eps;
#else
  const T mv = std::fma(g, s.one_minus_beta1, m * s.beta1);
  const T vv = std::fma(s.one_minus_beta2 * g, g, v * s.beta2);
  const T denom = std::sqrt(vv) / s.sqrt_bc2 + s.eps;
#endif
  p = pv + s.neg_step_size * mv / denom;
  m = mv;
  v = vv;
}

// CUDA launcher (kernels/adamw.cu): n contiguous elements of p, g, m, v (T = float or double),
// updated in place. Returns a cudaError_t as int.
template <typename T>
int adamw_step_cuda(T* p, const T* g, T* m, T* v, int64_t n, AdamWScalars<T> s, void* stream);

}  // namespace herd::kernels
