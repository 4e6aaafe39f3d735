// Gated long convolution (Hyena, H3, M2) with its skip term, per (b, c) row of length L:
//   u[t]  = x[t] pre[t]                                   (no pre gate: pre = 1)
//   z[t]  = sum_j kc[j] u[(t - j) mod n] + D u[t],  t < L  (u = 0 beyond L)
//   y[t]  = post[t] z[t]                                  (no post gate: post = 1)
// kc is a length-n circular kernel: the causal taps kf[0..Lf) at the front and, for M2's
// bidirectional form, the anti-causal taps kr[m] (input s = t+1+m) at kc[n-1-m]. With
// n >= L+Lf-1 and n >= L+Lr no product wraps into [0, L): the result is the exact linear
// convolution. Backward, with dy given:
//   dz = dy post,  dpost = dy z,  du[s] = sum_t dz[t] kc[(t - s) mod n] + D dz[s]
//   dx = du pre,   dpre = du x,   dkc[j] = sum_{b,t} dz[t] u[(t - j) mod n],  dD = sum dz u
// In length-n DFTs (unnormalised): Z = U Kc, DU = DZ conj(Kc), DKc = sum_b conj(U) DZ.
// The FFTs come from a library (FFTW on the CPU, cuFFT on CUDA); everything around them is
// these functions, so the CPU path and the CUDA pre/post kernels compute the same thing.
#pragma once

#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

// u = x * pre (pre may be null).
template <typename Acc, typename T>
HERD_HD inline Acc long_conv_input(const T* x, const T* pre, int64_t i) {
  const Acc v = static_cast<Acc>(x[i]);
  return pre ? v * static_cast<Acc>(pre[i]) : v;
}

// Tap j of the circular kernel (kr may be null: causal).
template <typename Acc, typename K>
HERD_HD inline Acc long_conv_tap(const K* kf, int64_t Lf, const K* kr, int64_t Lr, int64_t n,
                                 int64_t j) {
  if (j < Lf) return static_cast<Acc>(kf[j]);
  const int64_t m = n - 1 - j;  // anti-causal tap index
  return (kr && m < Lr) ? static_cast<Acc>(kr[m]) : Acc(0);
}

// (re, im) *= (kr, ki): the forward product U Kc.
template <typename Acc>
HERD_HD inline void spectrum_mul(Acc& re, Acc& im, Acc kr, Acc ki) {
  const Acc r = re * kr - im * ki;
  im = re * ki + im * kr;
  re = r;
}

// (re, im) *= conj(kr, ki): the adjoint product DZ conj(Kc).
template <typename Acc>
HERD_HD inline void spectrum_mul_conj(Acc& re, Acc& im, Acc kr, Acc ki) {
  const Acc r = re * kr + im * ki;
  im = im * kr - re * ki;
  re = r;
}

// (gr, gi) += conj(ur, ui) (dr, di): one batch row's share of DKc.
template <typename Acc>
HERD_HD inline void spectrum_acc_conj(Acc& gr, Acc& gi, Acc ur, Acc ui, Acc dr, Acc di) {
  gr += ur * dr + ui * di;
  gi += ur * di - ui * dr;
}

// z = conv + D u, y = post z (conv already divided by n; D may be absent: pass 0).
template <typename Acc>
HERD_HD inline Acc long_conv_skip(Acc conv, Acc u, Acc D) {
  return conv + D * u;
}

// Backward of the post gate: dz = dy post (post may be null).
template <typename Acc, typename T>
HERD_HD inline Acc long_conv_dz(Acc dy, const T* post, int64_t i) {
  return post ? dy * static_cast<Acc>(post[i]) : dy;
}

// Largest transform length the fused paths take (the reference takes any).
constexpr int64_t kLongConvMaxFft = int64_t{1} << 24;

}  // namespace herd::kernels
