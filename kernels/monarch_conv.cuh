// The long convolution as Monarch-decomposed DFTs on tensor cores (FlashFFTConv, Fu et al.
// 2023), one thread block per (b, c) row with the whole row in shared memory. For a power of
// two N = N1 N2 (N1 >= N2, both multiples of 16) and the row u in natural order, read as
// X[n1][n2] = u[N2 n1 + n2] (row-major, so X *is* u):
//   1. A = F1 X               [N1, N1] x [N1, N2]   column mixing  (tiles over the block)
//      B = A . T              T[k1][n2] = w_N^(k1 n2)               (in the epilogue)
//   2. C = B F2               [N1, N2] x [N2, N2]   row mixing     (strips, one warp each)
//      C[k1][k2] = U(k1 + N1 k2), the unnormalised DFT; Y = C . S  (S: the kernel spectrum)
//      B' = Y conj(F2), A' = B' . conj(T)                          (same strip, same warp)
//   3. z = Re(conj(F1) A') = F1r A'r + F1i A'i                     (rows with t < L only)
// Every matrix product is a 16x16x16 bfloat16 MMA with float accumulation; between the steps
// the row lives in shared memory in bfloat16 (6 N bytes: X real, P complex), as in
// FlashFFTConv. Rows of X past L are zero, so step 1 skips their K tiles and step 3 computes
// only the output rows that hold t < L.
//
// The block program is written once over a Block (threads(f), warps_do(f), sync()) whose warps
// hand a Core (16x16 fragments: zero, load_a, mma, store, lane(), lanes(), sync_warp()).
// kernels/monarch_conv.cu runs it with WMMA; HostMonarchBlock below runs the very same
// program on the CPU with the MMA emulated (bfloat16 operands, float sums), warps in either
// order, so that a wrong index or a missing barrier fails the CPU tests.
#pragma once

#include <cstdint>

#include "kernels/common.cuh"
#include "kernels/long_conv.cuh"

// Unrolled in device code (the strip's fragment arrays must stay in registers).
#if defined(__CUDA_ARCH__)
#define HERD_UNROLL _Pragma("unroll")
#else
#define HERD_UNROLL
#endif
// The block programs are host-device templates that call the device-only WMMA core only when
// instantiated for the device.
#if defined(__CUDACC__)
#define HERD_NO_EXEC_CHECK _Pragma("nv_exec_check_disable")
#else
#define HERD_NO_EXEC_CHECK
#endif

namespace herd::kernels {

constexpr int kMonarchWarps = 8;           // warps per row block
constexpr int kMonarchMaxStrip = 8;        // N2 / 16 at most: the strip's fragments in registers
constexpr int64_t kMonarchMinFft = 256;    // N1, N2 >= 16
constexpr int64_t kMonarchMaxFft = 32768;  // N2 <= 16 kMonarchMaxStrip; L up to 16384

// float <-> bfloat16 bits, round to nearest even (as torch and __float2bfloat16_rn).
HERD_HD inline uint16_t bf16_bits(float f) {
  uint32_t u = static_cast<uint32_t>(float_bits(f));
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
HERD_HD inline float bf16_value(uint16_t b) {
  return bits_float(static_cast<int32_t>(static_cast<uint32_t>(b) << 16));
}

// The DFT factors of one N (device or host pointers): bfloat16 bits, row-major.
struct MonarchTables {
  int64_t N, N1, N2;
  const uint16_t *f1r, *f1i;         // F_N1 [N1, N1]
  const uint16_t *f2r, *f2i, *f2in;  // F_N2 [N2, N2] and -Im F_N2 (MMA has no subtract)
  const float *twr, *twi;            // T [N1, N2]
};

// The shared-memory carve-up of one row block.
struct MonarchSmem {
  uint16_t* x;   // [N1, N2] the input row, bfloat16
  uint16_t* pr;  // [N1, N2] Re of the complex intermediate
  uint16_t* pi;  // [N1, N2] Im
  float* stage;  // [warps][2][256] accumulator tiles per warp
};
HERD_HD inline int64_t monarch_smem_bytes(int64_t N, int warps) {
  return 6 * N + int64_t{warps} * 2 * 256 * static_cast<int64_t>(sizeof(float));
}
HERD_HD inline MonarchSmem monarch_smem(void* base, int64_t N) {
  auto* h = static_cast<uint16_t*>(base);
  return {h, h + N, h + 2 * N, reinterpret_cast<float*>(h + 3 * N)};
}

// Row tiles of X (and of the output) that hold positions t < L.
HERD_HD inline int64_t monarch_live_tiles(const MonarchTables& tb, int64_t L) {
  const int64_t rows = (L + tb.N2 - 1) / tb.N2;
  return (rows + 15) / 16;
}

// Step 1: P = (F1 X) . T, 16x16 output tiles dealt round-robin to the warps.
HERD_NO_EXEC_CHECK
template <typename Core>
HERD_HD void monarch_columns_forward(Core& core, int w, int W, const MonarchTables& tb,
                                     const MonarchSmem& sm, int64_t L) {
  const int64_t N1 = tb.N1, N2 = tb.N2, ct = N2 / 16, kt_n = monarch_live_tiles(tb, L);
  float* st = sm.stage + int64_t{w} * 512;
  for (int64_t tile = w; tile < (N1 / 16) * ct; tile += W) {
    const int64_t i = tile / ct, j = tile % ct;
    typename Core::Acc ar, ai;
    core.zero(ar);
    core.zero(ai);
    for (int64_t kt = 0; kt < kt_n; ++kt) {
      typename Core::FragA fr, fi;
      core.load_a(fr, tb.f1r + 16 * i * N1 + 16 * kt, N1);
      core.load_a(fi, tb.f1i + 16 * i * N1 + 16 * kt, N1);
      const uint16_t* xb = sm.x + 16 * kt * N2 + 16 * j;
      core.mma(ar, fr, xb, N2);
      core.mma(ai, fi, xb, N2);
    }
    core.store(ar, st);
    core.store(ai, st + 256);
    core.sync_warp();
    for (int e = core.lane(); e < 256; e += core.lanes()) {
      const int64_t at = (16 * i + e / 16) * N2 + 16 * j + e % 16;
      const float tr = tb.twr[at], ti = tb.twi[at], re = st[e], im = st[256 + e];
      sm.pr[at] = bf16_bits(re * tr - im * ti);
      sm.pi[at] = bf16_bits(re * ti + im * tr);
    }
    core.sync_warp();
  }
}

// Step 2 on one strip of 16 rows (the warp's own): P <- P G with G = F2 (forward) or conj(F2)
// (inverse), then epi(k1, k2, re, im) on each product before it is stored back in bfloat16.
// The strip is read into fragments first, so the products may overwrite it in place.
HERD_NO_EXEC_CHECK
template <typename Core, typename Epi>
HERD_HD void monarch_strip_product(Core& core, const MonarchTables& tb, const MonarchSmem& sm,
                                   float* st, int64_t i, bool inverse, Epi epi) {
  const int64_t N2 = tb.N2;
  const int ct = static_cast<int>(N2 / 16);
  typename Core::FragA ar[kMonarchMaxStrip], ai[kMonarchMaxStrip];
  HERD_UNROLL
  for (int kt = 0; kt < kMonarchMaxStrip; ++kt)
    if (kt < ct) {
      core.load_a(ar[kt], sm.pr + 16 * i * N2 + 16 * kt, N2);
      core.load_a(ai[kt], sm.pi + 16 * i * N2 + 16 * kt, N2);
    }
  core.sync_warp();
  // (ar + i ai)(gr + i gi): forward gi = Im F2, inverse gi = -Im F2.
  const uint16_t* gi = inverse ? tb.f2in : tb.f2i;
  const uint16_t* gi_neg = inverse ? tb.f2i : tb.f2in;
  for (int64_t j = 0; j < ct; ++j) {
    typename Core::Acc cr, ci;
    core.zero(cr);
    core.zero(ci);
    HERD_UNROLL
    for (int kt = 0; kt < kMonarchMaxStrip; ++kt)
      if (kt < ct) {
        const int64_t o = 16 * kt * N2 + 16 * j;
        core.mma(cr, ar[kt], tb.f2r + o, N2);
        core.mma(cr, ai[kt], gi_neg + o, N2);
        core.mma(ci, ar[kt], gi + o, N2);
        core.mma(ci, ai[kt], tb.f2r + o, N2);
      }
    core.store(cr, st);
    core.store(ci, st + 256);
    core.sync_warp();
    for (int e = core.lane(); e < 256; e += core.lanes()) {
      const int64_t k1 = 16 * i + e / 16, k2 = 16 * j + e % 16, at = k1 * N2 + k2;
      float re = st[e], im = st[256 + e];
      epi(k1, k2, re, im);
      sm.pr[at] = bf16_bits(re);
      sm.pi[at] = bf16_bits(im);
    }
    core.sync_warp();
  }
}

// Step 3: z[t] = (F1r P_re + F1i P_im)[n1][n2] for the live output rows; out(t, z) for t < L.
HERD_NO_EXEC_CHECK
template <typename Core, typename Out>
HERD_HD void monarch_columns_inverse(Core& core, int w, int W, const MonarchTables& tb,
                                     const MonarchSmem& sm, int64_t L, Out out) {
  const int64_t N1 = tb.N1, N2 = tb.N2, ct = N2 / 16, ot = monarch_live_tiles(tb, L);
  float* st = sm.stage + int64_t{w} * 512;
  for (int64_t tile = w; tile < ot * ct; tile += W) {
    const int64_t i = tile / ct, j = tile % ct;
    typename Core::Acc acc;
    core.zero(acc);
    for (int64_t kt = 0; kt < N1 / 16; ++kt) {
      typename Core::FragA fr, fi;
      core.load_a(fr, tb.f1r + 16 * i * N1 + 16 * kt, N1);
      core.load_a(fi, tb.f1i + 16 * i * N1 + 16 * kt, N1);
      core.mma(acc, fr, sm.pr + 16 * kt * N2 + 16 * j, N2);
      core.mma(acc, fi, sm.pi + 16 * kt * N2 + 16 * j, N2);
    }
    core.store(acc, st);
    core.sync_warp();
    for (int e = core.lane(); e < 256; e += core.lanes()) {
      const int64_t t = (16 * i + e / 16) * N2 + 16 * j + e % 16;
      if (t < L) out(t, st[e]);
    }
    core.sync_warp();
  }
}

// Step 0: X = bfloat16(load(t)) for t < L, zero beyond.
HERD_NO_EXEC_CHECK
template <typename Block, typename Load>
HERD_HD void monarch_load_row(Block& blk, const MonarchTables& tb, const MonarchSmem& sm, int64_t L,
                              Load load) {
  blk.threads([&](int tid, int nt) {
    for (int64_t t = tid; t < tb.N; t += nt) sm.x[t] = bf16_bits(t < L ? load(t) : 0.0f);
  });
}

// One row of the circular convolution: out(t, z[t]) for t < L with Z = U S, where
// spec(f) = S(f) for the natural frequency f (the 1/N of the inverse folded into S).
HERD_NO_EXEC_CHECK
template <typename Block, typename Load, typename Spec, typename Out>
HERD_HD void monarch_conv_row(Block& blk, const MonarchTables& tb, const MonarchSmem& sm, int64_t L,
                              Load load, Spec spec, Out out) {
  monarch_load_row(blk, tb, sm, L, load);
  blk.sync();
  blk.warps_do([&](auto& core, int w, int W) { monarch_columns_forward(core, w, W, tb, sm, L); });
  blk.sync();
  blk.warps_do([&](auto& core, int w, int W) {
    float* st = sm.stage + int64_t{w} * 512;
    for (int64_t i = w; i < tb.N1 / 16; i += W) {
      monarch_strip_product(core, tb, sm, st, i, false,
                            [&](int64_t k1, int64_t k2, float& re, float& im) {
                              const Cx<float> s = spec(k1 + tb.N1 * k2);
                              spectrum_mul(re, im, s.re, s.im);
                            });
      monarch_strip_product(core, tb, sm, st, i, true,
                            [&](int64_t k1, int64_t n2, float& re, float& im) {
                              const int64_t at = k1 * tb.N2 + n2;
                              spectrum_mul_conj(re, im, tb.twr[at], tb.twi[at]);
                            });
    }
  });
  blk.sync();
  blk.warps_do(
      [&](auto& core, int w, int W) { monarch_columns_inverse(core, w, W, tb, sm, L, out); });
}

// One row's unnormalised DFT: emit(f, re, im) for every natural frequency f < N.
HERD_NO_EXEC_CHECK
template <typename Block, typename Load, typename Emit>
HERD_HD void monarch_dft_row(Block& blk, const MonarchTables& tb, const MonarchSmem& sm, int64_t L,
                             Load load, Emit emit) {
  monarch_load_row(blk, tb, sm, L, load);
  blk.sync();
  blk.warps_do([&](auto& core, int w, int W) { monarch_columns_forward(core, w, W, tb, sm, L); });
  blk.sync();
  blk.warps_do([&](auto& core, int w, int W) {
    float* st = sm.stage + int64_t{w} * 512;
    for (int64_t i = w; i < tb.N1 / 16; i += W)
      monarch_strip_product(
          core, tb, sm, st, i, false,
          [&](int64_t k1, int64_t k2, float& re, float& im) { emit(k1 + tb.N1 * k2, re, im); });
  });
}

// ---- The CPU emulation (tests): one thread per element loop, warps in turn ---------------
// The MMA rounds nothing itself: operands are bfloat16 already (as on the tensor cores) and
// products are summed in float.
struct HostMmaCore {
  struct Tile {
    float v[256];
  };
  using FragA = Tile;
  using Acc = Tile;
  int lane() const { return 0; }
  int lanes() const { return 1; }
  void sync_warp() {}
  void zero(Acc& a) const {
    for (float& v : a.v) v = 0.0f;
  }
  void load_a(FragA& f, const uint16_t* p, int64_t ld) const {
    for (int e = 0; e < 256; ++e) f.v[e] = bf16_value(p[(e / 16) * ld + e % 16]);
  }
  void mma(Acc& acc, const FragA& a, const uint16_t* b, int64_t ld) const {
    for (int r = 0; r < 16; ++r)
      for (int c = 0; c < 16; ++c) {
        float s = acc.v[r * 16 + c];
        for (int k = 0; k < 16; ++k) s += a.v[r * 16 + k] * bf16_value(b[k * ld + c]);
        acc.v[r * 16 + c] = s;
      }
  }
  void store(const Acc& a, float* p) const {
    for (int e = 0; e < 256; ++e) p[e] = a.v[e];
  }
};

// Threads as kThreads strided loops; warps one after another, last first when `reversed`
// (a result that depends on the order has a race the barriers do not cover).
struct HostMonarchBlock {
  bool reversed = false;
  template <typename F>
  void threads(F f) {
    for (int tid = 0; tid < 32 * kMonarchWarps; ++tid) f(tid, 32 * kMonarchWarps);
  }
  template <typename F>
  void warps_do(F f) {
    HostMmaCore core;
    for (int k = 0; k < kMonarchWarps; ++k)
      f(core, reversed ? kMonarchWarps - 1 - k : k, kMonarchWarps);
  }
  void sync() {}
};

// ---- The long convolution's steps over the row programs -------------------------------
// As long_conv_{forward,backward}_steps (kernels/long_conv.cuh) with the Monarch rows in
// place of the batched transforms of the activations: Exec adds
// monarch_conv_rows(tb, rows, L, load(r, t), spec(r, f), out(r, t, z)) and
// monarch_dft_rows(tb, rows, L, load(r, t), emit(r, f, re, im)). The kernel spectrum still
// comes from a float32 r2c (a.kspec, taps divided by n), read through the Hermitian
// symmetry; d.n is the Monarch N. A block reads and writes one row, so on this path y is
// [B, C, L] contiguous (not [B, L, C]) and the caller hands rows with unit t-stride.
template <typename Acc>
HERD_HD inline Cx<Acc> long_conv_full_bin(const Cx<Acc>* kspec, const LongConvDims& d, int64_t c,
                                          int64_t f, bool conj) {
  const bool low = f <= d.n / 2;
  const Cx<Acc> v = kspec[c * d.bins + (low ? f : d.n - f)];
  return {v.re, (low != conj) ? v.im : -v.im};
}

// u = x pre and dz = dy post at (row r, t < L).
template <typename T>
HERD_HD inline float long_conv_u_at(const Rows3<T>& x, const Rows3<T>& pre, const LongConvDims& d,
                                    int64_t r, int64_t t) {
  const int64_t b = r / d.C, c = r % d.C;
  return static_cast<float>(*x.at(b, c, t)) * gate_or_one<float>(pre, b, c, t);
}

#define HERD_MSTEP(expr)            \
  do {                              \
    if (int e_ = (expr)) return e_; \
  } while (0)

// The r2c bins (f <= n/2) of every row's u = x gate, through the Monarch DFT rows, into s.
template <typename Exec, typename T>
int long_conv_monarch_bins(Exec& ex, const MonarchTables& tb, const LongConvDims d,
                           const Rows3<T> x, const Rows3<T> gate, Cx<float>* s) {
  const int64_t bins = d.bins;
  return ex.monarch_dft_rows(
      tb, d.B * d.C, d.L,
      [=] HERD_HD(int64_t r, int64_t t) { return long_conv_u_at(x, gate, d, r, t); },
      [=] HERD_HD(int64_t r, int64_t f, float re, float im) {
        if (f < bins) s[r * bins + f] = {re, im};
      });
}

template <typename Exec, typename T>
int long_conv_monarch_forward_steps(Exec& ex, const LongConvCuda<T, float>& a,
                                    const MonarchTables& tb) {
  const LongConvDims d = a.d;
  if (d.B * d.C * d.L == 0) return 0;
  HERD_MSTEP(long_conv_kernel_spectra(ex, a));
  const Rows3<T> x = a.x, pre = a.pre, post = a.post;
  const Cx<float>* ks = a.kspec;
  const float* D = a.D;
  const int64_t Ds = a.D_stride;
  T* y = a.y;
  return ex.monarch_conv_rows(
      tb, d.B * d.C, d.L,
      [=] HERD_HD(int64_t r, int64_t t) { return long_conv_u_at(x, pre, d, r, t); },
      [=] HERD_HD(int64_t r, int64_t f) { return long_conv_full_bin(ks, d, r % d.C, f, false); },
      [=] HERD_HD(int64_t r, int64_t t, float z) {
        const int64_t b = r / d.C, c = r % d.C;
        const float u = long_conv_u_at(x, pre, d, r, t);
        const float v = long_conv_skip(z, u, D ? D[c * Ds] : 0.0f);
        y[r * d.L + t] = static_cast<T>(gate_or_one<float>(post, b, c, t) * v);
      });
}

template <typename Exec, typename T>
int long_conv_monarch_backward_steps(Exec& ex, const LongConvCuda<T, float>& a,
                                     const MonarchTables& tb) {
  const LongConvDims d = a.d;
  if (d.B * d.C * d.L == 0) return 0;
  const int64_t rows = d.B * d.C;
  const Rows3<T> x = a.x, pre = a.pre, post = a.post, dy = a.dy;
  const Cx<float>* ks = a.kspec;
  const float* D = a.D;
  const int64_t Ds = a.D_stride;
  HERD_MSTEP(long_conv_kernel_spectra(ex, a));
  // Lambdas take no lambdas along (nvcc's extended-lambda rules): u and dz are recomputed.
  if (a.dpost) {  // dpost = dy z, z recomputed
    T* dpost = a.dpost;
    HERD_MSTEP(ex.monarch_conv_rows(
        tb, rows, d.L,
        [=] HERD_HD(int64_t r, int64_t t) { return long_conv_u_at(x, pre, d, r, t); },
        [=] HERD_HD(int64_t r, int64_t f) { return long_conv_full_bin(ks, d, r % d.C, f, false); },
        [=] HERD_HD(int64_t r, int64_t t, float z) {
          const int64_t b = r / d.C, c = r % d.C;
          const float u = long_conv_u_at(x, pre, d, r, t);
          const float v = long_conv_skip(z, u, D ? D[c * Ds] : 0.0f);
          dpost[r * d.L + t] = static_cast<T>(static_cast<float>(*dy.at(b, c, t)) * v);
        }));
  }
  if (a.dD)
    HERD_MSTEP(ex.channel_sum(
        d.C, d.B * d.L,
        [=] HERD_HD(int64_t c, int64_t k) {
          const int64_t r = (k / d.L) * d.C + c, t = k % d.L;
          return long_conv_u_at(dy, post, d, r, t) * long_conv_u_at(x, pre, d, r, t);
        },
        a.dD));
  if (a.dk || a.dk_rev) {  // DKc = sum_b conj(U) DZ over the r2c bins, then as the cuFFT path
    HERD_MSTEP(long_conv_monarch_bins(ex, tb, d, x, pre, a.spec0));    // U
    HERD_MSTEP(long_conv_monarch_bins(ex, tb, d, dy, post, a.spec1));  // DZ
    HERD_MSTEP(long_conv_kernel_grads(ex, a));
  }
  if (!a.dx && !a.dpre) return 0;
  T *dx = a.dx, *dpre = a.dpre;
  return ex.monarch_conv_rows(
      tb, rows, d.L,
      [=] HERD_HD(int64_t r, int64_t t) { return long_conv_u_at(dy, post, d, r, t); },
      [=] HERD_HD(int64_t r, int64_t f) { return long_conv_full_bin(ks, d, r % d.C, f, true); },
      [=] HERD_HD(int64_t r, int64_t t, float z) {
        const int64_t b = r / d.C, c = r % d.C;
        const float dz = long_conv_u_at(dy, post, d, r, t);
        const float du = long_conv_skip(z, dz, D ? D[c * Ds] : 0.0f);
        if (dx) dx[r * d.L + t] = static_cast<T>(du * gate_or_one<float>(pre, b, c, t));
        if (dpre) dpre[r * d.L + t] = static_cast<T>(du * static_cast<float>(*x.at(b, c, t)));
      });
}

#undef HERD_MSTEP

// CUDA entry points (kernels/monarch_conv.cu): T float or uint16_t (bfloat16 bits). `tb`
// holds device pointers; the buffers of `a` are those long_conv_cuda sets up for N = d.n.
template <typename T>
int long_conv_monarch_forward_cuda(const LongConvCuda<T, float>& a, const MonarchTables& tb,
                                   void* stream);
template <typename T>
int long_conv_monarch_backward_cuda(const LongConvCuda<T, float>& a, const MonarchTables& tb,
                                    void* stream);
// The largest N whose row block fits the current device's shared memory (0: none).
int64_t monarch_conv_max_fft();

}  // namespace herd::kernels
