// Kernel of a diagonal SSM (H3/S4D) without the (H, N/2, L) Vandermonde matrix, per channel h:
//   K[l] = 2 Re( sum_n Ct[n] z_n^l ),   z_n = exp(w_n)   (any complex w: H3's bilinear
//   w = log(dA) with the principal log, S4D's zero-order hold w = dt A)
// and its gradients for a real upstream g[l], in PyTorch's complex convention
// (grad = dLoss/dRe + i dLoss/dIm; K is linear in Ct and holomorphic in w):
//   gCt[n] = 2 sum_l g[l] conj(z_n^l),   gw[n] = 2 conj(Ct[n]) sum_l l g[l] conj(z_n^l).
// Powers: positions come in tiles l = l0 + j and z^l = exp(l0 w) exp(j w). Every power is
// computed in double: exact exps (the argument l w formed without rounding), or between them
// at most kSsmReanchor - 1 double products, and rounded once to T. So the error is a few
// roundings of T whatever L is (the reference's float32 exp(l w) loses ~l ulps of phase).
// Sums run in T (float for float32, double for float64).
// The functions below are the whole math; the CPU loops and the CUDA threads both call them.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

// Positions per tile of the CPU path (the table exp(j w), j < kSsmTile, is built once per h).
constexpr int64_t kSsmTile = 64;
// Positions summed side by side in the CPU loops (a multiple of the SIMD width, and wide
// enough that g++ vectorizes the lane loop instead of unrolling it).
constexpr int64_t kSsmLanes = 16;
// Tiles per inner sum of ssm_backward_lanes (a two-level sum: see there).
constexpr int64_t kSsmSumBlock = 16;
// Powers in a row between two exact exps (double products in between: <= 15 roundings).
constexpr int64_t kSsmReanchor = 16;

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

// exp(l w) in double with l w formed exactly (its rounding error, from fma, is folded in to
// first order), so that the phase l Im(w) of a large l keeps full precision.
HERD_HD inline Cplx<double> ssm_exp_exact(Cplx<double> w, int64_t l) {
  const double ld = static_cast<double>(l);
  const double x = ld * w.re, ex = ::fma(ld, w.re, -x);
  const double y = ld * w.im, ey = ::fma(ld, w.im, -y);
  const double m = ::exp(x) * (1 + ex), c = ::cos(y), s = ::sin(y);
  return {m * (c - ey * s), m * (s + ey * c)};
}

// exp(l w) rounded once to T.
template <typename T>
HERD_HD inline Cplx<T> ssm_power(Cplx<T> w, int64_t l) {
  const Cplx<double> p = ssm_exp_exact(Cplx<double>{w.re, w.im}, l);
  return {static_cast<T>(p.re), static_cast<T>(p.im)};
}

// exp(l w) rounded to T for l = l0, l0 + step, l0 + 2 step, ...: an exact exp every
// kSsmReanchor powers, one double product by exp(step w) between them.
template <typename T>
struct SsmPowerWalk {
  Cplx<double> w, z, p;
  int64_t l, step, i;
  HERD_HD SsmPowerWalk(Cplx<T> w_, int64_t l0, int64_t step_)
      : w{w_.re, w_.im}, z{}, p{}, l(l0), step(step_), i(0) {
    z = ssm_exp_exact(w, step);
  }
  HERD_HD Cplx<T> next() {
    p = i++ % kSsmReanchor == 0 ? ssm_exp_exact(w, l) : cmul(p, z);
    l += step;
    return {static_cast<T>(p.re), static_cast<T>(p.im)};
  }
};

// Re(q e): one mode's contribution to K[l] / 2, with q = Ct exp(l0 w) and e = exp(j w).
template <typename T>
HERD_HD inline T ssm_fwd_term(Cplx<T> q, Cplx<T> e) {
  return q.re * e.re - q.im * e.im;
}

// out[j] = 2 Re sum_{n < modes} q[n] (e_re + i e_im)[n * ld + j] for j < len (<= kSsmTile):
// one tile of positions from the anchored coefficients q[n] = Ct[n] exp(l0 w_n). Positions
// go kSsmLanes at a time so that their sums stay in registers across the modes.
template <typename T>
HERD_HD inline void ssm_forward_tile(const Cplx<T>* q, int64_t modes, const T* e_re, const T* e_im,
                                     int64_t ld, int64_t len, T* out) {
  for (int64_t j0 = 0; j0 < len; j0 += kSsmLanes) {
    T acc[kSsmLanes];
    for (int64_t k = 0; k < kSsmLanes; ++k) acc[k] = T(0);
    for (int64_t n = 0; n < modes; ++n) {
      const T* er = e_re + n * ld + j0;
      const T* ei = e_im + n * ld + j0;
      for (int64_t k = 0; k < kSsmLanes; ++k) acc[k] += ssm_fwd_term(q[n], Cplx<T>{er[k], ei[k]});
    }
    const int64_t m = len - j0 < kSsmLanes ? len - j0 : kSsmLanes;
    for (int64_t k = 0; k < m; ++k) out[j0 + k] = T(2) * acc[k];
  }
}

// Backward, one position l of one mode, with gl = l g[l]: P += g conj(e), Q += gl conj(e).
template <typename T>
HERD_HD inline void ssm_bwd_term(T g, T gl, Cplx<T> e, Cplx<T>& P, Cplx<T>& Q) {
  P.re += g * e.re;
  P.im -= g * e.im;
  Q.re += gl * e.re;
  Q.im -= gl * e.im;
}

// The backward of kSsmLanes positions j0 + k of every tile at once (the CPU's order; a CUDA
// thread does the same for its one position):
//   U[k] = sum_t g[t ld + k] conj(a_t),   V[k] = sum_t gl[t ld + k] conj(a_t)
// with a_t = exp(t ld w) the anchors; g, gl start at position j0 and hold tiles * ld values.
// Two-level sums (blocks of kSsmSumBlock tiles, then the blocks), so that the rounding error
// of V (terms up to L |g|) grows with kSsmSumBlock + tiles / kSsmSumBlock, not with tiles.
// Afterwards, ssm_bwd_anchor(exp((j0 + k) w), U[k], V[k], ...) folds in the in-tile power.
template <typename T>
HERD_HD inline void ssm_backward_lanes(const T* g, const T* gl, int64_t ld, const T* a_re,
                                       const T* a_im, int64_t tiles, Cplx<T>* U, Cplx<T>* V) {
  T ur[kSsmLanes], ui[kSsmLanes], vr[kSsmLanes], vi[kSsmLanes];
  for (int64_t k = 0; k < kSsmLanes; ++k) ur[k] = ui[k] = vr[k] = vi[k] = T(0);
  for (int64_t t0 = 0; t0 < tiles; t0 += kSsmSumBlock) {
    const int64_t t1 = tiles - t0 < kSsmSumBlock ? tiles : t0 + kSsmSumBlock;
    Cplx<T> u[kSsmLanes], v[kSsmLanes];
    for (int64_t k = 0; k < kSsmLanes; ++k) u[k] = v[k] = Cplx<T>{T(0), T(0)};
    for (int64_t t = t0; t < t1; ++t) {
      const T* gt = g + t * ld;
      const T* glt = gl + t * ld;
      const Cplx<T> a{a_re[t], a_im[t]};
      for (int64_t k = 0; k < kSsmLanes; ++k) ssm_bwd_term(gt[k], glt[k], a, u[k], v[k]);
    }
    for (int64_t k = 0; k < kSsmLanes; ++k) {
      ur[k] += u[k].re;
      ui[k] += u[k].im;
      vr[k] += v[k].re;
      vi[k] += v[k].im;
    }
  }
  for (int64_t k = 0; k < kSsmLanes; ++k) {
    U[k] = {ur[k], ui[k]};
    V[k] = {vr[k], vi[k]};
  }
}

// Folds sums P = sum g conj(e), Q = sum l g conj(e) over positions whose powers are z^l = a e
// into gC = sum_l g conj(z^l) and S = sum_l l g conj(z^l):  gC += conj(a) P,  S += conj(a) Q.
template <typename T>
HERD_HD inline void ssm_bwd_anchor(Cplx<T> a, Cplx<T> P, Cplx<T> Q, Cplx<T>& gC, Cplx<T>& S) {
  const Cplx<T> p = cmul_conj(a, P), s = cmul_conj(a, Q);
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
