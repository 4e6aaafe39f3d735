// CPU fast path of short_conv: kernels/short_conv.cuh's point and tile functions in
// at::parallel_for loops. Unit-stride rows run row by row; transposed activations ([B, L, C]
// memory, the blocks' usual input) run in tiles of kTile neighbouring channels, one time step
// at a time, so every cache line read is used whole. Weight gradients sum in double.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <vector>

#include "kernels/short_conv.cuh"
#include "ops/short_conv_impl.h"

namespace herd::ops::detail {
namespace {

namespace K = kernels;

// About this many multiply-adds per parallel task: enough to amortise the scheduling.
constexpr int64_t kGrainWork = 1 << 15;
constexpr int64_t kTile = 16;  // channels per tile: one 64-byte line of float32
// Transposed activations with unit channel stride take wider tiles: each time step then reads
// kWide neighbouring channels (4 cache lines), which the hardware prefetcher follows; with 16
// channels every step was a lone line of another row, a memory latency each.
constexpr int64_t kWide = 64;
constexpr int64_t kSteps = 16;  // time steps per block of a wide tile (a 16 x kWide square)

// The blocked loops below compiled twice: for the build's baseline ISA and, on x86-64, with
// AVX2 (8 floats per instruction; no FMA, so every sum rounds exactly as the baseline's),
// picked at run time.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HERD_SHORT_CONV_AVX2 1
#define HERD_AVX2_ONLY __attribute__((target("avx2")))
bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#else
#define HERD_SHORT_CONV_AVX2 0
#endif
#define HERD_ALWAYS_INLINE inline __attribute__((always_inline))

K::Strided3 dims(const torch::Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.stride(0), t.stride(1), t.stride(2)};
}

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

// The tile's taps transposed to [K][tc] (so the channel loop reads them contiguously).
template <typename W>
void tile_taps(const W* w, int64_t K, int64_t c0, int64_t tc, W* wt) {
  for (int64_t r = 0; r < tc; ++r)
    for (int64_t j = 0; j < K; ++j) wt[j * tc + r] = w[(c0 + r) * K + j];
}

template <typename T, typename W, int64_t TC>
void forward_tile_steps(const T* x, const K::Strided3& d, const W* wt, int64_t Kw, int64_t tc,
                        const W* bias, T* y, int64_t row0) {
  using Acc = AccOf<T>;
  const int64_t n = TC > 0 ? TC : tc;
  Acc acc[kTile];
  for (int64_t t = 0; t < d.L; ++t) {
    for (int64_t r = 0; r < n; ++r) acc[r] = bias ? static_cast<Acc>(bias[r]) : Acc(0);
    K::short_conv_fwd_tile<Acc>(x, d.st, d.sc, wt, Kw, t, n, acc);
    for (int64_t r = 0; r < n; ++r) y[(row0 + r) * d.L + t] = static_cast<T>(acc[r]);
  }
}

// A wide tile (tc <= kWide channels, unit channel stride), kSteps time steps at a time: the
// sums of a kSteps x tc block in a local square (one vectorizable channel loop per tap),
// then written to y row by row, kSteps consecutive steps (a float32 cache line) per channel.
template <typename T, typename W>
HERD_ALWAYS_INLINE void forward_tile_blocked_body(const T* x, int64_t st, int64_t L, const W* wt,
                                                  int64_t Kw, int64_t tc, const W* bias, T* y) {
  using Acc = AccOf<T>;
  Acc sq[kSteps][kWide];
  for (int64_t t0 = 0; t0 < L; t0 += kSteps) {
    const int64_t nt = std::min(kSteps, L - t0);
    for (int64_t i = 0; i < nt; ++i) {
      Acc* acc = sq[i];
      for (int64_t r = 0; r < tc; ++r) acc[r] = bias ? static_cast<Acc>(bias[r]) : Acc(0);
      K::short_conv_fwd_tile<Acc>(x, st, int64_t{1}, wt, Kw, t0 + i, tc, acc);
    }
    for (int64_t r = 0; r < tc; ++r)
      for (int64_t i = 0; i < nt; ++i) y[r * L + t0 + i] = static_cast<T>(sq[i][r]);
  }
}

template <typename T, typename W>
void forward_tile_blocked(const T* x, int64_t st, int64_t L, const W* wt, int64_t Kw, int64_t tc,
                          const W* bias, T* y) {
  forward_tile_blocked_body(x, st, L, wt, Kw, tc, bias, y);
}

#if HERD_SHORT_CONV_AVX2
template <typename T, typename W>
HERD_AVX2_ONLY void forward_tile_blocked_avx2(const T* x, int64_t st, int64_t L, const W* wt,
                                              int64_t Kw, int64_t tc, const W* bias, T* y) {
  forward_tile_blocked_body(x, st, L, wt, Kw, tc, bias, y);
}
#endif

template <typename T, typename W>
void forward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
             torch::Tensor& y) {
  using Acc = AccOf<T>;
  const auto d = dims(x);
  const int64_t Kw = w.size(1);
  const T* xp = x.data_ptr<T>();
  const W* wp = w.data_ptr<W>();
  const W* bp = bias.defined() ? bias.data_ptr<W>() : nullptr;
  T* yp = y.data_ptr<T>();
  if (d.st == 1) {  // rows
    const int64_t grain = std::max<int64_t>(1, kGrainWork / (d.L * Kw));
    at::parallel_for(0, d.B * d.C, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / d.C, c = r % d.C;
        const T* xr = xp + b * d.sb + c * d.sc;
        const Acc bc = bp ? static_cast<Acc>(bp[c]) : Acc(0);
        T* yr = yp + r * d.L;
        for (int64_t t = 0; t < d.L; ++t)
          yr[t] = static_cast<T>(bc + K::short_conv_fwd_point<Acc>(xr, 1, wp + c * Kw, Kw, t));
      }
    });
    return;
  }
  const int64_t tile = d.sc == 1 ? kWide : kTile;
  const int64_t tiles = (d.C + tile - 1) / tile;
  const int64_t grain = std::max<int64_t>(1, kGrainWork / (d.L * Kw * tile));
  at::parallel_for(0, d.B * tiles, grain, [&](int64_t i0, int64_t i1) {
    std::vector<W> wt(static_cast<size_t>(Kw * tile));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / tiles, c0 = (i % tiles) * tile, tc = std::min(tile, d.C - c0);
      tile_taps(wp, Kw, c0, tc, wt.data());
      const T* xt = xp + b * d.sb + c0 * d.sc;
      const W* bt = bp ? bp + c0 : nullptr;
      if (d.sc == 1) {
        T* yt = yp + (b * d.C + c0) * d.L;
#if HERD_SHORT_CONV_AVX2
        if (cpu_has_avx2()) {
          forward_tile_blocked_avx2(xt, d.st, d.L, wt.data(), Kw, tc, bt, yt);
          continue;
        }
#endif
        forward_tile_blocked(xt, d.st, d.L, wt.data(), Kw, tc, bt, yt);
      } else if (tc == kTile)
        forward_tile_steps<T, W, kTile>(xt, d, wt.data(), Kw, tc, bt, yp, b * d.C + c0);
      else
        forward_tile_steps<T, W, 0>(xt, d, wt.data(), Kw, tc, bt, yp, b * d.C + c0);
    }
  });
}

// dx of one unit-stride row: tap by tap over the whole row (a loop over s the compiler
// vectorizes), each element summing its taps in the order of short_conv_dx_point.
template <typename T, typename W>
HERD_ALWAYS_INLINE void input_grad_row_body(const T* g, const W* w, int64_t Kw, int64_t L, T* o) {
  using Acc = AccOf<T>;
  if constexpr (std::is_same_v<T, Acc>) {
    std::fill(o, o + L, T(0));
    for (int64_t j = 0; j < Kw; ++j) {
      // o[s] += w[j] g[s + K-1-j] for s + K-1-j < L
      const int64_t shift = Kw - 1 - j, n = std::max<int64_t>(0, L - shift);
      const Acc wj = static_cast<Acc>(w[j]);
      const T* gs = g + shift;
      for (int64_t s = 0; s < n; ++s) o[s] += wj * gs[s];
    }
  } else {
    for (int64_t s = 0; s < L; ++s)
      o[s] = static_cast<T>(K::short_conv_dx_point<Acc>(g, 1, w, Kw, L, s));
  }
}

template <typename T, typename W>
void input_grad_row(const T* g, const W* w, int64_t Kw, int64_t L, T* o) {
  input_grad_row_body(g, w, Kw, L, o);
}

#if HERD_SHORT_CONV_AVX2
template <typename T, typename W>
HERD_AVX2_ONLY void input_grad_row_avx2(const T* g, const W* w, int64_t Kw, int64_t L, T* o) {
  input_grad_row_body(g, w, Kw, L, o);
}
#endif

template <typename T, typename W>
void input_grad(const torch::Tensor& dy, const torch::Tensor& w, torch::Tensor& dx) {
  using Acc = AccOf<T>;
  const auto gd = dims(dy);
  const int64_t Kw = w.size(1), C = gd.C, L = gd.L;
  const T* gp = dy.data_ptr<T>();
  const W* wp = w.data_ptr<W>();
  T* out = dx.data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, kGrainWork / (L * Kw));
  at::parallel_for(0, gd.B * C, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* g = gp + (r / C) * gd.sb + (r % C) * gd.sc;
      const W* wr = wp + (r % C) * Kw;
      T* o = out + r * L;
      if (gd.st == 1) {
#if HERD_SHORT_CONV_AVX2
        if (cpu_has_avx2()) {
          input_grad_row_avx2(g, wr, Kw, L, o);
          continue;
        }
#endif
        input_grad_row(g, wr, Kw, L, o);
      } else
        for (int64_t s = 0; s < L; ++s)
          o[s] = static_cast<T>(K::short_conv_dx_point<Acc>(g, gd.st, wr, Kw, L, s));
    }
  });
}

// Weight-gradient sums of one full tile of transposed x (unit channel stride) against rows of
// dy (unit time stride): dy read 16 steps x 16 channels at a time into a local square, so
// both operands of the channel loop are contiguous. The terms add up in the order of
// short_conv_dw_tile (time step by time step).
template <typename T>
HERD_ALWAYS_INLINE void weight_grads_tile_blocked_body(const T* x, int64_t xst, const T* g,
                                                       int64_t L, int64_t Kw, int64_t tc,
                                                       double* acc) {
  T sq[kSteps][kWide];
  for (int64_t t0 = 0; t0 < L; t0 += kSteps) {
    const int64_t nt = std::min(kSteps, L - t0);
    for (int64_t r = 0; r < tc; ++r)
      for (int64_t i = 0; i < nt; ++i) sq[i][r] = g[r * L + t0 + i];
    // dy step t0 + i is row i of the square (time stride 0 from its start).
    for (int64_t i = 0; i < nt; ++i)
      K::short_conv_dw_tile<double>(x, xst, int64_t{1}, sq[i], int64_t{0}, int64_t{1}, Kw, t0 + i,
                                    tc, acc);
  }
}

template <typename T>
void weight_grads_tile_blocked(const T* x, int64_t xst, const T* g, int64_t L, int64_t Kw,
                               int64_t tc, double* acc) {
  weight_grads_tile_blocked_body(x, xst, g, L, Kw, tc, acc);
}

#if HERD_SHORT_CONV_AVX2
template <typename T>
HERD_AVX2_ONLY void weight_grads_tile_blocked_avx2(const T* x, int64_t xst, const T* g, int64_t L,
                                                   int64_t Kw, int64_t tc, double* acc) {
  weight_grads_tile_blocked_body(x, xst, g, L, Kw, tc, acc);
}
#endif

// dw [C, K] and dbias [C] (either may be undefined), summed in double over batch and time.
template <typename T, typename W>
void weight_grads(const torch::Tensor& x, const torch::Tensor& dy, torch::Tensor& dw,
                  torch::Tensor& dbias, int64_t Kw) {
  const auto xd = dims(x), gd = dims(dy);
  const int64_t C = xd.C, L = xd.L, B = xd.B;
  const T* xp = x.data_ptr<T>();
  const T* gp = dy.data_ptr<T>();
  W* dwp = dw.defined() ? dw.data_ptr<W>() : nullptr;
  W* dbp = dbias.defined() ? dbias.data_ptr<W>() : nullptr;
  if (xd.st == 1 && gd.st == 1) {  // rows: a dot product of length L per (b, c, tap)
    const int64_t grain = std::max<int64_t>(1, kGrainWork / (B * L * (Kw + 1)));
    at::parallel_for(0, C, grain, [&](int64_t c0, int64_t c1) {
      std::array<double, K::kShortConvMaxK + 1> acc;
      for (int64_t c = c0; c < c1; ++c) {
        acc.fill(0.0);
        for (int64_t b = 0; b < B; ++b) {
          const T* xr = xp + b * xd.sb + c * xd.sc;
          const T* g = gp + b * gd.sb + c * gd.sc;
          for (int64_t j = 0; j < Kw; ++j) {
            const int64_t shift = Kw - 1 - j;  // x index t - shift for output t
            double s = 0;
            for (int64_t t = shift; t < L; ++t)
              s += static_cast<double>(g[t]) * static_cast<double>(xr[t - shift]);
            acc[j] += s;
          }
          double s = 0;
          for (int64_t t = 0; t < L; ++t) s += static_cast<double>(g[t]);
          acc[Kw] += s;
        }
        if (dwp)
          for (int64_t j = 0; j < Kw; ++j) dwp[c * Kw + j] = static_cast<W>(acc[j]);
        if (dbp) dbp[c] = static_cast<W>(acc[Kw]);
      }
    });
    return;
  }
  const bool wide = xd.sc == 1 && gd.st == 1;  // transposed x, rows of dy
  const int64_t tile = wide ? kWide : kTile;
  const int64_t tiles = (C + tile - 1) / tile;
  at::parallel_for(0, tiles, 1, [&](int64_t i0, int64_t i1) {
    std::vector<double> acc(static_cast<size_t>((Kw + 1) * tile));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t c0 = i * tile, tc = std::min(tile, C - c0);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < B; ++b) {
        const T* xt = xp + b * xd.sb + c0 * xd.sc;
        const T* g = gp + b * gd.sb + c0 * gd.sc;
        if (wide) {
#if HERD_SHORT_CONV_AVX2
          if (cpu_has_avx2()) {
            weight_grads_tile_blocked_avx2(xt, xd.st, g, L, Kw, tc, acc.data());
            continue;
          }
#endif
          weight_grads_tile_blocked(xt, xd.st, g, L, Kw, tc, acc.data());
          continue;
        }
        for (int64_t t = 0; t < L; ++t)
          K::short_conv_dw_tile<double>(xt, xd.st, xd.sc, g, gd.st, gd.sc, Kw, t, tc, acc.data());
      }
      for (int64_t r = 0; r < tc; ++r) {
        if (dwp)
          for (int64_t j = 0; j < Kw; ++j) dwp[(c0 + r) * Kw + j] = static_cast<W>(acc[j * tc + r]);
        if (dbp) dbp[c0 + r] = static_cast<W>(acc[Kw * tc + r]);
      }
    }
  });
}

bool bf16_with_float_taps(const torch::Tensor& x, const torch::Tensor& w) {
  return x.scalar_type() == torch::kBFloat16 && w.scalar_type() == torch::kFloat;
}

template <typename T, typename W>
void backward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& dy,
              torch::Tensor& dx, torch::Tensor& dw, torch::Tensor& db) {
  if (dx.defined()) input_grad<T, W>(dy, w, dx);
  if (dw.defined() || db.defined()) weight_grads<T, W>(x, dy, dw, db, w.size(1));
}

}  // namespace

torch::Tensor short_conv_forward_cpu(const torch::Tensor& x, const torch::Tensor& w,
                                     const torch::Tensor& bias) {
  auto y = torch::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  if (bf16_with_float_taps(x, w)) {
    forward<c10::BFloat16, float>(x, w, bias, y);
    return y;
  }
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, x.scalar_type(), "short_conv_forward_cpu",
                                 [&] { forward<scalar_t, scalar_t>(x, w, bias, y); });
  return y;
}

std::array<torch::Tensor, 3> short_conv_backward_cpu(const torch::Tensor& x, const torch::Tensor& w,
                                                     const torch::Tensor& dy, bool need_dx,
                                                     bool need_dw, bool need_dbias) {
  torch::Tensor dx, dw, db;
  if (need_dx) dx = torch::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  if (need_dw) dw = torch::empty_like(w);
  if (need_dbias) db = torch::empty({x.size(1)}, w.options());
  if (bf16_with_float_taps(x, w)) {
    backward<c10::BFloat16, float>(x, w, dy, dx, dw, db);
    return {dx, dw, db};
  }
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, x.scalar_type(), "short_conv_backward_cpu",
                                 [&] { backward<scalar_t, scalar_t>(x, w, dy, dx, dw, db); });
  return {dx, dw, db};
}

}  // namespace herd::ops::detail
