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

// ---- The CUDA path's element functions (kernels/long_conv.cu) ------------------------------
// cuFFT transforms whole [rows, n] buffers, so around it each kernel computes one element of
// a buffer; thread i of a grid-stride loop calls the function below for element i. Tests run
// the same functions over every i on the CPU, with torch's FFT standing in for cuFFT.

// A [B, C, L] view by element strides (null p: the absent gate, read as 1).
template <typename T>
struct Rows3 {
  const T* p;
  int64_t sb, sc, st;
  HERD_HD const T* at(int64_t b, int64_t c, int64_t t) const {
    return p + b * sb + c * sc + t * st;
  }
};

struct LongConvDims {
  int64_t B, C, L, Lf, Lr, n, bins;  // rows of the batched buffers: B * C (row r = b C + c)
};

// Complex element layout of cuFFT and std::complex: (re, im).
template <typename T>
struct Cx {
  T re, im;
};

template <typename Acc, typename T>
HERD_HD inline Acc gate_or_one(const Rows3<T>& g, int64_t b, int64_t c, int64_t t) {
  return g.p ? static_cast<Acc>(*g.at(b, c, t)) : Acc(1);
}

// Element i of the kernel buffer [C, n]: circular tap j of channel c, divided by n.
template <typename Acc, typename K>
HERD_HD inline Acc long_conv_tap_element(const K* kf, int64_t kf_stride, const K* kr,
                                         int64_t kr_stride, const LongConvDims& d, int64_t i) {
  const int64_t c = i / d.n, j = i % d.n;
  return long_conv_tap<Acc>(kf + c * kf_stride, d.Lf, kr ? kr + c * kr_stride : nullptr, d.Lr, d.n,
                            j) /
         static_cast<Acc>(d.n);
}

// Element i of the input buffer [B C, n]: u = x pre for t < L, zero padding beyond.
template <typename Acc, typename T>
HERD_HD inline Acc long_conv_input_element(const Rows3<T>& x, const Rows3<T>& pre,
                                           const LongConvDims& d, int64_t i) {
  const int64_t r = i / d.n, t = i % d.n;
  if (t >= d.L) return Acc(0);
  const int64_t b = r / d.C, c = r % d.C;
  return static_cast<Acc>(*x.at(b, c, t)) * gate_or_one<Acc>(pre, b, c, t);
}

// Element i of the spectra [B C, bins]: s *= K[c] (conj: s *= conj(K[c])).
template <typename Acc>
HERD_HD inline void long_conv_product_element(Cx<Acc>* s, const Cx<Acc>* k, const LongConvDims& d,
                                              bool conj, int64_t i) {
  const int64_t r = i / d.bins, f = i % d.bins, c = r % d.C;
  const Cx<Acc> kv = k[c * d.bins + f];
  Acc re = s[i].re, im = s[i].im;
  if (conj)
    spectrum_mul_conj(re, im, kv.re, kv.im);
  else
    spectrum_mul(re, im, kv.re, kv.im);
  s[i] = {re, im};
}

// Element i of y, laid out [B, L, C] (i = (b L + t) C + c): post (conv + D u).
template <typename Acc, typename T>
HERD_HD inline Acc long_conv_output_element(const Rows3<T>& x, const Rows3<T>& pre,
                                            const Rows3<T>& post, const Acc* conv, const Acc* D,
                                            int64_t D_stride, const LongConvDims& d, int64_t i) {
  const int64_t c = i % d.C, bt = i / d.C, t = bt % d.L, b = bt / d.L;
  const Acc u = static_cast<Acc>(*x.at(b, c, t)) * gate_or_one<Acc>(pre, b, c, t);
  const Acc z = long_conv_skip(conv[(b * d.C + c) * d.n + t], u, D ? D[c * D_stride] : Acc(0));
  return gate_or_one<Acc>(post, b, c, t) * z;
}

// Element i of the dz buffer [B C, n]: dy post for t < L, zero beyond.
template <typename Acc, typename T>
HERD_HD inline Acc long_conv_dz_element(const Rows3<T>& dy, const Rows3<T>& post,
                                        const LongConvDims& d, int64_t i) {
  const int64_t r = i / d.n, t = i % d.n;
  if (t >= d.L) return Acc(0);
  const int64_t b = r / d.C, c = r % d.C;
  return static_cast<Acc>(*dy.at(b, c, t)) * gate_or_one<Acc>(post, b, c, t);
}

// Element i of the gate/input gradients [B, C, L] (contiguous): with the adjoint
// convolution `conv` of dz, du = conv + D dz; dx = du pre, dpre = du x.
template <typename Acc, typename T>
HERD_HD inline void long_conv_input_grads_element(const Rows3<T>& x, const Rows3<T>& pre,
                                                  const Acc* conv, const Acc* dz, const Acc* D,
                                                  int64_t D_stride, const LongConvDims& d,
                                                  int64_t i, Acc* dx, Acc* dpre) {
  const int64_t t = i % d.L, r = i / d.L, c = r % d.C, b = r / d.C;
  const int64_t j = r * d.n + t;
  const Acc du = long_conv_skip(conv[j], dz[j], D ? D[c * D_stride] : Acc(0));
  *dx = du * gate_or_one<Acc>(pre, b, c, t);
  *dpre = du * static_cast<Acc>(*x.at(b, c, t));
}

// Element (c, f) of the kernel-gradient spectrum: sum over b of conj(U) DZ, in batch order.
template <typename Acc>
HERD_HD inline Cx<Acc> long_conv_kernel_grad_element(const Cx<Acc>* U, const Cx<Acc>* DZ,
                                                     const LongConvDims& d, int64_t i) {
  const int64_t c = i / d.bins, f = i % d.bins;
  Acc gr = Acc(0), gi = Acc(0);
  for (int64_t b = 0; b < d.B; ++b) {
    const int64_t j = (b * d.C + c) * d.bins + f;
    spectrum_acc_conj(gr, gi, U[j].re, U[j].im, DZ[j].re, DZ[j].im);
  }
  return {gr, gi};
}

// Causal tap j (< Lk) and anti-causal tap m (< Lk_rev) of channel c from the inverse of the
// kernel-gradient spectrum (dkc, unnormalised: divided by n here). Taps at or beyond L get 0.
template <typename Acc>
HERD_HD inline Acc long_conv_dk_element(const Acc* dkc, const LongConvDims& d, int64_t Lk,
                                        int64_t i) {
  const int64_t c = i / Lk, j = i % Lk;
  return j < d.Lf ? dkc[c * d.n + j] / static_cast<Acc>(d.n) : Acc(0);
}
template <typename Acc>
HERD_HD inline Acc long_conv_dk_rev_element(const Acc* dkc, const LongConvDims& d, int64_t Lk_rev,
                                            int64_t i) {
  const int64_t c = i / Lk_rev, m = i % Lk_rev;
  return m < d.Lr ? dkc[c * d.n + d.n - 1 - m] / static_cast<Acc>(d.n) : Acc(0);
}

// dD[c] partial: the sum over t of dz u for one (b, c) row; a block sums rows in b order.
template <typename Acc, typename T>
HERD_HD inline Acc long_conv_dD_term(const Rows3<T>& x, const Rows3<T>& pre, const Acc* dz,
                                     const LongConvDims& d, int64_t b, int64_t c, int64_t t) {
  const Acc u = static_cast<Acc>(*x.at(b, c, t)) * gate_or_one<Acc>(pre, b, c, t);
  return dz[(b * d.C + c) * d.n + t] * u;
}

// ---- The CUDA pipeline -----------------------------------------------------------------
// Buffers are allocated by the caller (src/ops/long_conv_cuda.cpp): real0/real1 [B C, n],
// spec0/spec1 [B C, bins], kspec [C, bins]; Acc = double for double, else float. T is the
// activations' element type (on the device: float, double or __nv_bfloat16).
template <typename T, typename Acc>
struct LongConvCuda {
  Rows3<T> x, pre, post, dy;
  const Acc *kf, *kr, *D;
  int64_t kf_stride, kr_stride, D_stride, Lk, Lk_rev;
  LongConvDims d;
  Acc *real0, *real1;
  Cx<Acc>*spec0, *spec1, *kspec;
  T* y;                   // forward: [B, L, C]
  T *dx, *dpre, *dpost;   // backward: contiguous [B, C, L] or null
  Acc *dk, *dk_rev, *dD;  // backward: [C, Lk], [C, Lk_rev], [C] or null
  Acc* dkc;               // backward scratch [C, n] (when dk or dk_rev)
};

// The steps of the forward and backward passes, written once over an executor `ex` that
// provides for_each(count, f) (f(i) for every i, in parallel), r2c/c2r(in, out, n, rows)
// (batched unnormalised real FFTs), copy(dst, src, count) and channel_sum(C, count, f, out)
// (out[c] = sum over k < count of f(c, k), in a fixed order). kernels/long_conv.cu runs them
// with CUDA kernels and cuFFT; tests run them on the CPU. Each returns 0 or an error code.
#define HERD_STEP(expr)             \
  do {                              \
    if (int e_ = (expr)) return e_; \
  } while (0)

template <typename Exec, typename T, typename Acc>
int long_conv_kernel_spectra(Exec& ex, const LongConvCuda<T, Acc>& a) {
  const LongConvDims d = a.d;
  const Acc *kf = a.kf, *kr = a.kr;
  const int64_t kfs = a.kf_stride, krs = a.kr_stride;
  Acc* taps = a.real1;
  HERD_STEP(ex.for_each(d.C * d.n, [=] HERD_HD(int64_t i) {
    taps[i] = long_conv_tap_element<Acc>(kf, kfs, kr, krs, d, i);
  }));
  return ex.r2c(taps, a.kspec, d.n, d.C);
}

template <typename Exec, typename T, typename Acc>
int long_conv_input_spectra(Exec& ex, const LongConvCuda<T, Acc>& a) {
  const LongConvDims d = a.d;
  const Rows3<T> x = a.x, pre = a.pre;
  Acc* u = a.real0;
  HERD_STEP(ex.for_each(d.B * d.C * d.n, [=] HERD_HD(int64_t i) {
    u[i] = long_conv_input_element<Acc>(x, pre, d, i);
  }));
  return ex.r2c(u, a.spec0, d.n, d.B * d.C);
}

template <typename Exec, typename Acc>
int long_conv_product(Exec& ex, Cx<Acc>* s, const Cx<Acc>* k, const LongConvDims d, bool conj) {
  return ex.for_each(d.B * d.C * d.bins,
                     [=] HERD_HD(int64_t i) { long_conv_product_element<Acc>(s, k, d, conj, i); });
}

// The kernel gradients from U (spec0) and DZ (spec1): row b = 0 of spec0 takes
// sum_b conj(U) DZ in place (each i reads only its column), then one c2r and the taps.
template <typename Exec, typename T, typename Acc>
int long_conv_kernel_grads(Exec& ex, const LongConvCuda<T, Acc>& a) {
  const LongConvDims d = a.d;
  Cx<Acc>* U = a.spec0;
  const Cx<Acc>* DZ = a.spec1;
  HERD_STEP(ex.for_each(d.C * d.bins, [=] HERD_HD(int64_t i) {
    U[i] = long_conv_kernel_grad_element<Acc>(U, DZ, d, i);
  }));
  HERD_STEP(ex.c2r(a.spec0, a.dkc, d.n, d.C));
  const Acc* dkc = a.dkc;
  if (a.dk) {
    Acc* dk = a.dk;
    const int64_t Lk = a.Lk;
    HERD_STEP(ex.for_each(
        d.C * Lk, [=] HERD_HD(int64_t i) { dk[i] = long_conv_dk_element<Acc>(dkc, d, Lk, i); }));
  }
  if (a.dk_rev) {
    Acc* dkr = a.dk_rev;
    const int64_t Lr = a.Lk_rev;
    HERD_STEP(ex.for_each(d.C * Lr, [=] HERD_HD(int64_t i) {
      dkr[i] = long_conv_dk_rev_element<Acc>(dkc, d, Lr, i);
    }));
  }
  return 0;
}

template <typename Exec, typename T, typename Acc>
int long_conv_forward_steps(Exec& ex, const LongConvCuda<T, Acc>& a) {
  const LongConvDims d = a.d;
  if (d.B * d.C * d.L == 0) return 0;
  HERD_STEP(long_conv_kernel_spectra(ex, a));
  HERD_STEP(long_conv_input_spectra(ex, a));
  HERD_STEP(long_conv_product(ex, a.spec0, a.kspec, d, false));
  HERD_STEP(ex.c2r(a.spec0, a.real1, d.n, d.B * d.C));
  const Rows3<T> x = a.x, pre = a.pre, post = a.post;
  const Acc *conv = a.real1, *D = a.D;
  const int64_t Ds = a.D_stride;
  T* y = a.y;
  return ex.for_each(d.B * d.L * d.C, [=] HERD_HD(int64_t i) {
    y[i] = static_cast<T>(long_conv_output_element<Acc>(x, pre, post, conv, D, Ds, d, i));
  });
}

template <typename Exec, typename T, typename Acc>
int long_conv_backward_steps(Exec& ex, const LongConvCuda<T, Acc>& a) {
  const LongConvDims d = a.d;
  if (d.B * d.C * d.L == 0) return 0;
  const int64_t rows = d.B * d.C;
  const Rows3<T> x = a.x, pre = a.pre, post = a.post, dy = a.dy;
  const Acc* D = a.D;
  const int64_t Ds = a.D_stride;
  HERD_STEP(long_conv_kernel_spectra(ex, a));
  HERD_STEP(long_conv_input_spectra(ex, a));  // U in spec0
  if (a.dpost) {  // z recomputed from a copy of U (c2r may overwrite its input)
    HERD_STEP(ex.copy(a.spec1, a.spec0, rows * d.bins));
    HERD_STEP(long_conv_product(ex, a.spec1, a.kspec, d, false));
    HERD_STEP(ex.c2r(a.spec1, a.real1, d.n, rows));
    const Acc* conv = a.real1;
    T* dpost = a.dpost;
    const Rows3<T> none{nullptr, 0, 0, 0};
    HERD_STEP(ex.for_each(rows * d.L, [=] HERD_HD(int64_t i) {
      const int64_t t = i % d.L, r = i / d.L, c = r % d.C, b = r / d.C;
      const int64_t yi = (b * d.L + t) * d.C + c;  // the same element in [B, L, C] order
      const Acc z = long_conv_output_element<Acc>(x, pre, none, conv, D, Ds, d, yi);
      dpost[i] = static_cast<T>(static_cast<Acc>(*dy.at(b, c, t)) * z);
    }));
  }
  Acc* dz = a.real1;
  HERD_STEP(ex.for_each(
      rows * d.n, [=] HERD_HD(int64_t i) { dz[i] = long_conv_dz_element<Acc>(dy, post, d, i); }));
  if (a.dD)
    HERD_STEP(ex.channel_sum(
        d.C, d.B * d.L,
        [=] HERD_HD(int64_t c, int64_t k) {
          return long_conv_dD_term<Acc>(x, pre, dz, d, k / d.L, c, k % d.L);
        },
        a.dD));
  HERD_STEP(ex.r2c(dz, a.spec1, d.n, rows));  // DZ; dz stays in real1
  if (a.dk || a.dk_rev) HERD_STEP(long_conv_kernel_grads(ex, a));
  if (!a.dx && !a.dpre) return 0;
  HERD_STEP(long_conv_product(ex, a.spec1, a.kspec, d, true));
  HERD_STEP(ex.c2r(a.spec1, a.real0, d.n, rows));
  const Acc* conv = a.real0;
  T *dx = a.dx, *dpre = a.dpre;
  return ex.for_each(rows * d.L, [=] HERD_HD(int64_t i) {
    Acc gx, gp;
    long_conv_input_grads_element<Acc>(x, pre, conv, dz, D, Ds, d, i, &gx, &gp);
    if (dx) dx[i] = static_cast<T>(gx);
    if (dpre) dpre[i] = static_cast<T>(gp);
  });
}

#undef HERD_STEP

// CUDA entry points (kernels/long_conv.cu); T at this interface: float, double or uint16_t
// (bfloat16 bits), reinterpreted as __nv_bfloat16 inside. `stream` is a cudaStream_t.
template <typename T, typename Acc>
int long_conv_forward_cuda(const LongConvCuda<T, Acc>& a, void* stream);
template <typename T, typename Acc>
int long_conv_backward_cuda(const LongConvCuda<T, Acc>& a, void* stream);

}  // namespace herd::kernels
