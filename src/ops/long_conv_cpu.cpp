// CPU fast path of long_conv: kernels/long_conv.cuh around FFTW row transforms. Work is split
// over tiles of kTile channels (and over batch rows in the forward pass); each task holds a
// few length-n row buffers, never a [B, C, n] tensor. The backward recomputes each row's
// input spectrum and reduces the kernel gradient over the batch inside its channel tile, so
// the sums run in a fixed order whatever the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <complex>
#include <type_traits>
#include <vector>

#include "kernels/long_conv.cuh"
#include "ops/fft_plan.h"
#include "ops/long_conv_impl.h"

namespace herd::ops::detail {
namespace {

namespace K = kernels;

constexpr int64_t kTile = 8;  // channels per task

// Element pointer and strides of a [B, C, L] tensor (null when undefined).
template <typename T>
struct Rows {
  const T* p = nullptr;
  int64_t sb = 0, sc = 0, st = 0;
  explicit Rows(const torch::Tensor& t) {
    if (!t.defined()) return;
    p = t.data_ptr<T>();
    sb = t.stride(0), sc = t.stride(1), st = t.stride(2);
  }
  const T* row(int64_t b, int64_t c) const { return p ? p + b * sb + c * sc : nullptr; }
};

struct Shape {
  int64_t B, C, L, Lf, Lr, n, bins;
};

Shape shape_of(const LongConvInputs& in, int64_t n) {
  const int64_t L = in.x.size(2);
  const int64_t Lf = std::min<int64_t>(in.k.size(1), L);
  const int64_t Lr = in.k_rev.defined() ? std::min<int64_t>(in.k_rev.size(1), L - 1) : 0;
  return {in.x.size(0), in.x.size(1), L, Lf, Lr, n, n / 2 + 1};
}

// Per-thread buffers: the tile's kernel spectra (scaled by 1/n) and row scratch.
template <typename Acc>
struct Scratch {
  using Cx = std::complex<Acc>;
  int64_t rstride, cstride;
  fft::Buffer<Acc> real;  // 3 rows of n
  fft::Buffer<Cx> cx;     // kTile kernel spectra + 3 work spectra
  explicit Scratch(const Shape& s)
      : rstride(fft::aligned_stride(s.n)),
        cstride(fft::aligned_stride(2 * s.bins) / 2),
        real(static_cast<size_t>(3 * rstride)),
        cx(static_cast<size_t>((kTile + 3) * cstride)) {}
  Acc* row(int i) { return real.data() + i * rstride; }
  Cx* kspec(int64_t r) { return cx.data() + r * cstride; }
  Cx* spec(int i) { return cx.data() + (kTile + i) * cstride; }
};

// Kernel spectra of channels [c0, c0 + tc), divided by n so inverse transforms need no scaling.
template <typename Acc>
void kernel_spectra(const torch::Tensor& k, const torch::Tensor& k_rev, const Shape& s,
                    const fft::RealFft<Acc>& fft, int64_t c0, int64_t tc, Scratch<Acc>& w) {
  const Acc* kf = k.data_ptr<Acc>();
  const Acc* kr = k_rev.defined() ? k_rev.data_ptr<Acc>() : nullptr;
  const Acc inv_n = Acc(1) / static_cast<Acc>(s.n);
  Acc* taps = w.row(0);
  for (int64_t r = 0; r < tc; ++r) {
    const int64_t c = c0 + r;
    const Acc* kfc = kf + c * k.stride(0);
    const Acc* krc = kr ? kr + c * k_rev.stride(0) : nullptr;
    for (int64_t j = 0; j < s.n; ++j)
      taps[j] = inv_n * K::long_conv_tap<Acc>(kfc, s.Lf, krc, s.Lr, s.n, j);
    fft.forward(taps, w.kspec(r));
  }
}

// u = x pre into buf[0, L), zeros to n. Strided rows read with their stride.
template <typename Acc, typename T>
void gather_input(const T* x, const T* pre, int64_t sx, int64_t sp, const Shape& s, Acc* buf) {
  if (sx == 1 && (!pre || sp == 1)) {
    for (int64_t t = 0; t < s.L; ++t) buf[t] = K::long_conv_input<Acc>(x, pre, t);
  } else {
    for (int64_t t = 0; t < s.L; ++t)
      buf[t] = pre ? static_cast<Acc>(x[t * sx]) * static_cast<Acc>(pre[t * sp])
                   : static_cast<Acc>(x[t * sx]);
  }
  std::fill(buf + s.L, buf + s.n, Acc(0));
}

// Strided element i of a row (null row: 1, the absent gate).
template <typename Acc, typename T>
inline Acc at_or_one(const T* row, int64_t stride, int64_t i) {
  return row ? static_cast<Acc>(row[i * stride]) : Acc(1);
}

template <typename T, typename Acc>
void forward(const LongConvInputs& in, const Shape& s, torch::Tensor& y) {
  const Rows<T> x(in.x), pre(in.pre), post(in.post);
  const Acc* D = in.D.defined() ? in.D.data_ptr<Acc>() : nullptr;
  const int64_t dsD = in.D.defined() ? in.D.stride(0) : 0;
  T* out = y.data_ptr<T>();  // [B, L, C] memory
  const fft::RealFft<Acc> fft(s.n);
  const int64_t tiles = (s.C + kTile - 1) / kTile;
  // Task i: tile i / B, batch row i % B (a thread's consecutive tasks share kernel spectra).
  at::parallel_for(0, tiles * s.B, 1, [&](int64_t i0, int64_t i1) {
    Scratch<Acc> w(s);
    std::vector<Acc> ybuf(static_cast<size_t>(kTile * s.L));
    int64_t have = -1;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t tile = i / s.B, b = i % s.B, c0 = tile * kTile;
      const int64_t tc = std::min(kTile, s.C - c0);
      if (tile != have) kernel_spectra<Acc>(in.k, in.k_rev, s, fft, c0, tc, w), have = tile;
      for (int64_t r = 0; r < tc; ++r) {
        const int64_t c = c0 + r;
        Acc* u = w.row(0);
        Acc* conv = w.row(1);
        auto* spec = w.spec(0);
        gather_input<Acc>(x.row(b, c), pre.row(b, c), x.st, pre.st, s, u);
        fft.forward(u, spec);
        const auto* ks = w.kspec(r);
        for (int64_t f = 0; f < s.bins; ++f) {
          Acc re = spec[f].real(), im = spec[f].imag();
          K::spectrum_mul(re, im, ks[f].real(), ks[f].imag());
          spec[f] = {re, im};
        }
        fft.inverse(spec, conv);
        const Acc d = D ? D[c * dsD] : Acc(0);
        const T* pr = post.row(b, c);
        Acc* yr = ybuf.data() + r * s.L;
        for (int64_t t = 0; t < s.L; ++t)
          yr[t] = at_or_one<Acc>(pr, post.st, t) * K::long_conv_skip(conv[t], u[t], d);
      }
      T* ob = out + b * s.L * s.C + c0;
      for (int64_t t = 0; t < s.L; ++t)
        for (int64_t r = 0; r < tc; ++r) ob[t * s.C + r] = static_cast<T>(ybuf[r * s.L + t]);
    }
  });
}

template <typename T, typename Acc>
void backward(const LongConvInputs& in, const torch::Tensor& dy_t, const Shape& s,
              const LongConvNeeds& need, LongConvGrads& g) {
  using Cx = std::complex<Acc>;
  const Rows<T> x(in.x), pre(in.pre), post(in.post), dy(dy_t);
  const Acc* D = in.D.defined() ? in.D.data_ptr<Acc>() : nullptr;
  const int64_t dsD = in.D.defined() ? in.D.stride(0) : 0;
  T* dx = g.dx.defined() ? g.dx.data_ptr<T>() : nullptr;  // contiguous [B, C, L]
  T* dpre = g.dpre.defined() ? g.dpre.data_ptr<T>() : nullptr;
  T* dpost = g.dpost.defined() ? g.dpost.data_ptr<T>() : nullptr;
  const bool want_dk = need.dk || need.dk_rev, want_du = dx || dpre;
  const fft::RealFft<Acc> fft(s.n);
  const int64_t tiles = (s.C + kTile - 1) / kTile;
  at::parallel_for(0, tiles, 1, [&](int64_t i0, int64_t i1) {
    Scratch<Acc> w(s);
    const int64_t cs = w.cstride;
    fft::Buffer<Cx> acc(static_cast<size_t>(want_dk ? kTile * cs : 0));
    for (int64_t tile = i0; tile < i1; ++tile) {
      const int64_t c0 = tile * kTile, tc = std::min(kTile, s.C - c0);
      kernel_spectra<Acc>(in.k, in.k_rev, s, fft, c0, tc, w);
      if (want_dk) std::fill(acc.data(), acc.data() + kTile * cs, Cx(0));
      double dD[kTile] = {};
      for (int64_t b = 0; b < s.B; ++b)
        for (int64_t r = 0; r < tc; ++r) {
          const int64_t c = c0 + r;
          Acc *u = w.row(0), *dz = w.row(1), *conv = w.row(2);
          Cx *uspec = w.spec(0), *dzspec = w.spec(1), *spec = w.spec(2);
          const Cx* ks = w.kspec(r);
          const Acc d = D ? D[c * dsD] : Acc(0);
          const T *xr = x.row(b, c), *pr = pre.row(b, c), *qr = post.row(b, c);
          const T* gr = dy.row(b, c);
          gather_input<Acc>(xr, pr, x.st, pre.st, s, u);
          fft.forward(u, uspec);
          if (dpost) {  // recompute z = conv + D u; dpost = dy z
            for (int64_t f = 0; f < s.bins; ++f) {
              Acc re = uspec[f].real(), im = uspec[f].imag();
              K::spectrum_mul(re, im, ks[f].real(), ks[f].imag());
              spec[f] = {re, im};
            }
            fft.inverse(spec, conv);
            T* o = dpost + (b * s.C + c) * s.L;
            for (int64_t t = 0; t < s.L; ++t)
              o[t] = static_cast<T>(static_cast<Acc>(gr[t * dy.st]) *
                                    K::long_conv_skip(conv[t], u[t], d));
          }
          double dsum = 0;
          for (int64_t t = 0; t < s.L; ++t) {
            dz[t] = static_cast<Acc>(gr[t * dy.st]) * at_or_one<Acc>(qr, post.st, t);
            dsum += static_cast<double>(dz[t]) * static_cast<double>(u[t]);
          }
          dD[r] += dsum;
          std::fill(dz + s.L, dz + s.n, Acc(0));
          fft.forward(dz, dzspec);
          if (want_dk) {
            Cx* a = acc.data() + r * cs;
            for (int64_t f = 0; f < s.bins; ++f) {
              Acc gr2 = a[f].real(), gi = a[f].imag();
              K::spectrum_acc_conj(gr2, gi, uspec[f].real(), uspec[f].imag(), dzspec[f].real(),
                                   dzspec[f].imag());
              a[f] = {gr2, gi};
            }
          }
          if (!want_du) continue;
          for (int64_t f = 0; f < s.bins; ++f) {
            Acc re = dzspec[f].real(), im = dzspec[f].imag();
            K::spectrum_mul_conj(re, im, ks[f].real(), ks[f].imag());
            spec[f] = {re, im};
          }
          fft.inverse(spec, conv);
          T* ox = dx ? dx + (b * s.C + c) * s.L : nullptr;
          T* op = dpre ? dpre + (b * s.C + c) * s.L : nullptr;
          for (int64_t t = 0; t < s.L; ++t) {
            const Acc du = K::long_conv_skip(conv[t], dz[t], d);
            if (ox) ox[t] = static_cast<T>(du * at_or_one<Acc>(pr, pre.st, t));
            if (op) op[t] = static_cast<T>(du * static_cast<Acc>(xr[t * x.st]));
          }
        }
      for (int64_t r = 0; r < tc; ++r) {
        const int64_t c = c0 + r;
        if (need.dD) g.dD.data_ptr<Acc>()[c] = static_cast<Acc>(dD[r]);
        if (!want_dk) continue;
        // dkc = irfft(sum_b conj(U) DZ) / n, split back into causal and anti-causal taps.
        Acc* dkc = w.row(2);
        fft.inverse(acc.data() + r * cs, dkc);
        const Acc inv_n = Acc(1) / static_cast<Acc>(s.n);
        if (need.dk) {
          Acc* o = g.dk.data_ptr<Acc>() + c * g.dk.size(1);
          for (int64_t j = 0; j < g.dk.size(1); ++j) o[j] = j < s.Lf ? dkc[j] * inv_n : Acc(0);
        }
        if (need.dk_rev) {
          Acc* o = g.dk_rev.data_ptr<Acc>() + c * g.dk_rev.size(1);
          for (int64_t m = 0; m < g.dk_rev.size(1); ++m)
            o[m] = m < s.Lr ? dkc[s.n - 1 - m] * inv_n : Acc(0);
        }
      }
    }
  });
}

template <typename T>
using AccOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace

torch::Tensor long_conv_forward_cpu(const LongConvInputs& in, int64_t n) {
  const Shape s = shape_of(in, n);
  auto y = torch::empty({s.B, s.L, s.C}, in.x.options()).transpose(1, 2);
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, in.x.scalar_type(), "long_conv_forward_cpu",
                                 [&] { forward<scalar_t, AccOf<scalar_t>>(in, s, y); });
  return y;
}

LongConvGrads long_conv_backward_cpu(const LongConvInputs& in, const torch::Tensor& dy, int64_t n,
                                     const LongConvNeeds& need) {
  const Shape s = shape_of(in, n);
  LongConvGrads g;
  const auto xo = in.x.options();
  if (need.dx) g.dx = torch::empty({s.B, s.C, s.L}, xo);
  if (need.dpre) g.dpre = torch::empty({s.B, s.C, s.L}, xo);
  if (need.dpost) g.dpost = torch::empty({s.B, s.C, s.L}, xo);
  if (need.dk) g.dk = torch::empty({s.C, in.k.size(1)}, in.k.options());
  if (need.dk_rev) g.dk_rev = torch::empty({s.C, in.k_rev.size(1)}, in.k_rev.options());
  if (need.dD) g.dD = torch::empty({s.C}, in.D.options());
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, in.x.scalar_type(), "long_conv_backward_cpu",
                                 [&] { backward<scalar_t, AccOf<scalar_t>>(in, dy, s, need, g); });
  return g;
}

}  // namespace herd::ops::detail
