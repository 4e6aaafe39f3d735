// Short causal depthwise convolution (Hyena/M2 short filters, Primer dconv), per (b, c) row:
//   y[t]  = bias + sum_{j<K} w[j] x[t-(K-1)+j]            (x[<0] = 0)
//   dx[s] = sum_{j<K} w[j] dy[s+(K-1)-j]                  (dy[>=L] = 0)
//   dw[j] = sum_{b,t} dy[t] x[t-(K-1)+j],  dbias = sum_{b,t} dy[t]
// Rows are strided (x is often a transposed view), weights are a contiguous [C, K] of W (the
// activations' type, or float for bfloat16 activations under autocast); sums run in Acc.
// The point and tile functions are the whole math; CPU loops and CUDA threads both call them.
#pragma once

#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

// Widest filter the fused path takes (Primer's dconv_width is at most 64).
constexpr int64_t kShortConvMaxK = 64;

// One output y[t] of a row without the bias; x points at the row start, xs is its stride.
template <typename Acc, typename T, typename W>
HERD_HD inline Acc short_conv_fwd_point(const T* x, int64_t xs, const W* w, int64_t K, int64_t t) {
  const int64_t base = t - (K - 1);  // x index multiplied by w[0]
  Acc acc = Acc(0);
  for (int64_t j = base >= 0 ? 0 : -base; j < K; ++j)
    acc += static_cast<Acc>(w[j]) * static_cast<Acc>(x[(base + j) * xs]);
  return acc;
}

// One input gradient dx[s] of a row of length L.
template <typename Acc, typename T, typename W>
HERD_HD inline Acc short_conv_dx_point(const T* dy, int64_t dys, const W* w, int64_t K, int64_t L,
                                       int64_t s) {
  const int64_t top = s + (K - 1);  // dy index multiplied by w[0]
  Acc acc = Acc(0);
  for (int64_t j = top < L ? 0 : top - (L - 1); j < K; ++j)
    acc += static_cast<Acc>(w[j]) * static_cast<Acc>(dy[(top - j) * dys]);
  return acc;
}

// Time step t's contribution to dw[j] (j == K: to dbias) of one row.
template <typename Acc, typename T>
HERD_HD inline Acc short_conv_dw_term(const T* x, int64_t xs, const T* dy, int64_t dys, int64_t K,
                                      int64_t t, int64_t j) {
  const Acc g = static_cast<Acc>(dy[t * dys]);
  if (j == K) return g;
  const int64_t s = t - (K - 1) + j;
  return s >= 0 ? g * static_cast<Acc>(x[s * xs]) : Acc(0);
}

// Channel tiles of a layout whose channels are closer than its time steps (x a transposed
// [B, L, C] view): one time step t of `tc` channels at once, wt the tile's taps as [K][tc].
// acc[r] += sum_j wt[j tc + r] x[(t-(K-1)+j) st + r sc]; x points at (b, t = 0, first channel).
template <typename Acc, typename T, typename W>
HERD_HD inline void short_conv_fwd_tile(const T* x, int64_t st, int64_t sc, const W* wt, int64_t K,
                                        int64_t t, int64_t tc, Acc* acc) {
  const int64_t base = t - (K - 1);
  for (int64_t j = base >= 0 ? 0 : -base; j < K; ++j) {
    const T* xt = x + (base + j) * st;
    for (int64_t r = 0; r < tc; ++r)
      acc[r] += static_cast<Acc>(wt[j * tc + r]) * static_cast<Acc>(xt[r * sc]);
  }
}

// The weight-gradient terms of one time step t for a tile: acc[j tc + r] += dy[t, r] x[t', r]
// (t' = t-(K-1)+j), and acc[K tc + r] += dy[t, r] for the bias. dy and x point at (b, 0, c0).
template <typename Acc, typename T>
HERD_HD inline void short_conv_dw_tile(const T* x, int64_t xst, int64_t xsc, const T* dy,
                                       int64_t dst, int64_t dsc, int64_t K, int64_t t, int64_t tc,
                                       Acc* acc) {
  const T* g = dy + t * dst;
  for (int64_t r = 0; r < tc; ++r) acc[K * tc + r] += static_cast<Acc>(g[r * dsc]);
  const int64_t base = t - (K - 1);
  for (int64_t j = base >= 0 ? 0 : -base; j < K; ++j) {
    const T* xt = x + (base + j) * xst;
    for (int64_t r = 0; r < tc; ++r)
      acc[j * tc + r] += static_cast<Acc>(g[r * dsc]) * static_cast<Acc>(xt[r * xsc]);
  }
}

// Shapes and element strides of a [B, C, L] tensor.
struct Strided3 {
  int64_t B, C, L;
  int64_t sb, sc, st;
};

// Which (b, c, t) the i-th of B*C*L output threads computes, and where it writes. Channels-last
// tensors (sc == 1: the blocks' transposed [B, L, C] projections) take c fastest, so a warp
// reads 32 neighbouring channels of one step and writes them to an output of the same layout
// (coalesced both ways); rows (st == 1) take t fastest over a contiguous [B, C, L] output.
struct ShortConvPoint {
  int64_t b, c, t, out;  // out: element offset into the output (its layout: channels_last)
};
HERD_HD inline bool short_conv_channels_last(const Strided3& d) {
  return d.sc == 1 && d.C > 1;
}
HERD_HD inline ShortConvPoint short_conv_point_of(int64_t i, const Strided3& d) {
  if (short_conv_channels_last(d)) {  // output [B, L, C] in memory
    const int64_t c = i % d.C, r = i / d.C, t = r % d.L, b = r / d.L;
    return {b, c, t, i};
  }
  const int64_t t = i % d.L, r = i / d.L, c = r % d.C, b = r / d.C;
  return {b, c, t, i};  // output [B, C, L]
}

// CUDA launchers (kernels/short_conv.cu): T the activations' type (float, double, or uint16_t
// carrying bfloat16), W the taps' (T, or float for bfloat16 under autocast); sums in float for
// float/bfloat16 and double for double; return a cudaError_t as int. y and dx are written in
// the layout short_conv_point_of gives for x (y) and dy (dx); w, dw: contiguous [C, K] of W;
// bias/dbias ([C] of W) may be null.
template <typename T, typename W>
int short_conv_forward_cuda(const T* x, Strided3 xd, const W* w, int64_t K, const W* bias, T* y,
                            void* stream);
template <typename T, typename W>
int short_conv_backward_cuda(const T* x, Strided3 xd, const W* w, int64_t K, const T* dy,
                             Strided3 dyd, T* dx, W* dw, W* dbias, void* stream);

}  // namespace herd::kernels
