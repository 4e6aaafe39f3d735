// Kernel of a diagonal SSM (H3/S4D) without the (H, N/2, L) Vandermonde matrix, per channel h:
//   K[l] = 2 Re( sum_n Ct[n] z_n^l ),   z_n = exp(w_n),  w = log(dA) (complex, principal log)
// and its gradients for a real upstream g[l], in PyTorch's complex convention
// (grad = dLoss/dRe + i dLoss/dIm; K is linear in Ct and holomorphic in w):
//   gCt[n] = 2 sum_l g[l] conj(z_n^l),   gw[n] = 2 conj(Ct[n]) sum_l l g[l] conj(z_n^l).
// Powers: positions come in tiles l = l0 + j (j < a tile width) and z^l = exp(l0 w) exp(j w),
// both factors exact exps (argument formed in double), so the error is a few roundings
// whatever L is. Sums run in T (float for float32, double for float64).
// The functions below are the whole math; the CPU loops and the CUDA threads both call them.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

// Positions per tile of the CPU path (the table exp(j w), j < kSsmTile, is built once per h).
constexpr int64_t kSsmTile = 64;

// A complex number as two reals, laid out as torch's complex (re, im) pairs.
template <typename T>
struct Cplx {
  T re, im;
};

template <typename T>
HERD_HD inline Cplx<T> cmul(Cplx<T> a, Cplx<T> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

// conj(a) * b
template <typename T>
HERD_HD inline Cplx<T> cmul_conj(Cplx<T> a, Cplx<T> b) {
  return {a.re * b.re + a.im * b.im, a.re * b.im - a.im * b.re};
}

// exp(l w) rounded once to T: the argument l w is formed in double (exact for float w), so
// the phase l Im(w) carries no float32 rounding of its own.
template <typename T>
HERD_HD inline Cplx<T> ssm_power(Cplx<T> w, int64_t l) {
  const double x = static_cast<double>(l) * static_cast<double>(w.re);
  const double y = static_cast<double>(l) * static_cast<double>(w.im);
  const double m = ::exp(x);
  return {static_cast<T>(m * ::cos(y)), static_cast<T>(m * ::sin(y))};
}

// Re(q e): one mode's contribution to K[l] / 2, with q = Ct exp(l0 w) and e = exp(j w).
template <typename T>
HERD_HD inline T ssm_fwd_term(Cplx<T> q, Cplx<T> e) {
  return q.re * e.re - q.im * e.im;
}

// out[j] = 2 Re sum_{n < modes} q[n] (e_re + i e_im)[n * ld + j] for j < len (<= kSsmTile):
// one tile of positions from the anchored coefficients q[n] = Ct[n] exp(l0 w_n).
template <typename T>
HERD_HD inline void ssm_forward_tile(const Cplx<T>* q, int64_t modes, const T* e_re, const T* e_im,
                                     int64_t ld, int64_t len, T* out) {
  T acc[kSsmTile];
  for (int64_t j = 0; j < kSsmTile; ++j) acc[j] = T(0);
  for (int64_t n = 0; n < modes; ++n) {
    const T* er = e_re + n * ld;
    const T* ei = e_im + n * ld;
    for (int64_t j = 0; j < kSsmTile; ++j) acc[j] += ssm_fwd_term(q[n], Cplx<T>{er[j], ei[j]});
  }
  for (int64_t j = 0; j < len; ++j) out[j] = T(2) * acc[j];
}

// Backward, one position of one mode: P += g conj(e), Q += pos g conj(e).
template <typename T>
HERD_HD inline void ssm_bwd_term(T g, Cplx<T> e, T pos, Cplx<T>& P, Cplx<T>& Q) {
  const T cr = g * e.re, ci = -g * e.im;
  P.re += cr;
  P.im += ci;
  Q.re += pos * cr;
  Q.im += pos * ci;
}

// The same over a tile of len positions, e = exp(j w) at position j (pos = j).
template <typename T>
HERD_HD inline void ssm_backward_tile(const T* g, const T* e_re, const T* e_im, int64_t len,
                                      Cplx<T>& P, Cplx<T>& Q) {
  Cplx<T> p{T(0), T(0)}, q{T(0), T(0)};
  for (int64_t j = 0; j < len; ++j) ssm_bwd_term(g[j], Cplx<T>{e_re[j], e_im[j]}, T(j), p, q);
  P.re += p.re;
  P.im += p.im;
  Q.re += q.re;
  Q.im += q.im;
}

// Folds the sums P = sum g conj(e), Q = sum pos g conj(e) of positions off + pos, whose
// powers are z^(off + pos) = a e, into gC = sum_l g conj(z^l) and S = sum_l l g conj(z^l):
//   gC += conj(a) P,   S += conj(a) (off P + Q).
template <typename T>
HERD_HD inline void ssm_bwd_anchor(Cplx<T> a, T off, Cplx<T> P, Cplx<T> Q, Cplx<T>& gC,
                                   Cplx<T>& S) {
  const Cplx<T> p = cmul_conj(a, P);
  const Cplx<T> s = cmul_conj(a, Cplx<T>{off * P.re + Q.re, off * P.im + Q.im});
  gC.re += p.re;
  gC.im += p.im;
  S.re += s.re;
  S.im += s.im;
}

// The gradients from the sums: gCt = 2 gC, gw = 2 conj(Ct) S.
template <typename T>
HERD_HD inline void ssm_bwd_finish(Cplx<T> Ct, Cplx<T> gC, Cplx<T> S, Cplx<T>* gCt, Cplx<T>* gw) {
  if (gCt) *gCt = {T(2) * gC.re, T(2) * gC.im};
  if (gw) {
    const Cplx<T> s = cmul_conj(Ct, S);
    *gw = {T(2) * s.re, T(2) * s.im};
  }
}

// CUDA launchers (kernels/ssm_kernel.cu), T = float or double; return a cudaError_t as int.
// Ct, w, gCt, gw: contiguous (H, N2) complex as (re, im) pairs; K, g: contiguous (H, L).
// gCt or gw may be null (not wanted).
template <typename T>
int ssm_kernel_forward_cuda(const Cplx<T>* Ct, const Cplx<T>* w, int64_t H, int64_t N2, int64_t L,
                            T* K, void* stream);
template <typename T>
int ssm_kernel_backward_cuda(const Cplx<T>* Ct, const Cplx<T>* w, const T* g, int64_t H, int64_t N2,
                             int64_t L, Cplx<T>* gCt, Cplx<T>* gw, void* stream);

}  // namespace herd::kernels
