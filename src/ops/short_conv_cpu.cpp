// CPU fast path of short_conv: kernels/short_conv.cuh's point functions in at::parallel_for
// loops, rows (b, c) in parallel for y and dx, channels in parallel for dw/dbias.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>

#include "kernels/short_conv.cuh"
#include "ops/short_conv_impl.h"

namespace herd::ops::detail {
namespace {

// About this many multiply-adds per parallel task: enough to amortise the scheduling.
constexpr int64_t kGrainWork = 1 << 15;

kernels::Strided3 dims(const torch::Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.stride(0), t.stride(1), t.stride(2)};
}

// Unit-stride rows get their own instantiation so that the compiler sees the stride.
template <typename T, bool Unit>
void forward_row(const T* x, int64_t xs, const T* w, int64_t K, int64_t L, T bias, T* y) {
  for (int64_t t = 0; t < L; ++t)
    y[t] = bias + kernels::short_conv_fwd_point<T>(x, Unit ? 1 : xs, w, K, t);
}

template <typename T, bool Unit>
void dx_row(const T* dy, int64_t dys, const T* w, int64_t K, int64_t L, T* dx) {
  for (int64_t s = 0; s < L; ++s)
    dx[s] = kernels::short_conv_dx_point<T>(dy, Unit ? 1 : dys, w, K, L, s);
}

template <typename T>
void forward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
             torch::Tensor& y) {
  const auto d = dims(x);
  const int64_t K = w.size(1);
  const T* xp = x.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  const T* bp = bias.defined() ? bias.data_ptr<T>() : nullptr;
  T* yp = y.data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, kGrainWork / (d.L * K));
  at::parallel_for(0, d.B * d.C, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / d.C, c = r % d.C;
      const T* xr = xp + b * d.sb + c * d.sc;
      const T bc = bp ? bp[c] : T(0);
      if (d.st == 1)
        forward_row<T, true>(xr, 1, wp + c * K, K, d.L, bc, yp + r * d.L);
      else
        forward_row<T, false>(xr, d.st, wp + c * K, K, d.L, bc, yp + r * d.L);
    }
  });
}

template <typename T>
void backward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& dy,
              torch::Tensor& dx, torch::Tensor& dw, torch::Tensor& dbias) {
  const auto xd = dims(x), gd = dims(dy);
  const int64_t K = w.size(1), C = xd.C, L = xd.L;
  const T* xp = x.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  const T* gp = dy.data_ptr<T>();
  if (dx.defined()) {
    T* out = dx.data_ptr<T>();
    const int64_t grain = std::max<int64_t>(1, kGrainWork / (L * K));
    at::parallel_for(0, xd.B * C, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* g = gp + (r / C) * gd.sb + (r % C) * gd.sc;
        if (gd.st == 1)
          dx_row<T, true>(g, 1, wp + (r % C) * K, K, L, out + r * L);
        else
          dx_row<T, false>(g, gd.st, wp + (r % C) * K, K, L, out + r * L);
      }
    });
  }
  if (!dw.defined() && !dbias.defined()) return;
  T* dwp = dw.defined() ? dw.data_ptr<T>() : nullptr;
  T* dbp = dbias.defined() ? dbias.data_ptr<T>() : nullptr;
  const int64_t grain = std::max<int64_t>(1, kGrainWork / (xd.B * L * (K + 1)));
  at::parallel_for(0, C, grain, [&](int64_t c0, int64_t c1) {
    // Sums in double: B * L terms per channel (the float reference reduces pairwise).
    std::array<double, kernels::kShortConvMaxK + 1> acc;
    for (int64_t c = c0; c < c1; ++c) {
      acc.fill(0.0);
      for (int64_t b = 0; b < xd.B; ++b) {
        const T* xr = xp + b * xd.sb + c * xd.sc;
        const T* gr = gp + b * gd.sb + c * gd.sc;
        for (int64_t j = dwp ? 0 : K; j <= (dbp ? K : K - 1); ++j)  // j == K: dbias
          for (int64_t t = j < K ? K - 1 - j : 0; t < L; ++t)
            acc[j] += kernels::short_conv_dw_term<double>(xr, xd.st, gr, gd.st, K, t, j);
      }
      if (dwp)
        for (int64_t j = 0; j < K; ++j) dwp[c * K + j] = static_cast<T>(acc[j]);
      if (dbp) dbp[c] = static_cast<T>(acc[K]);
    }
  });
}

}  // namespace

torch::Tensor short_conv_forward_cpu(const torch::Tensor& x, const torch::Tensor& w,
                                     const torch::Tensor& bias) {
  auto y = torch::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "short_conv_forward_cpu",
                             [&] { forward<scalar_t>(x, w, bias, y); });
  return y;
}

std::array<torch::Tensor, 3> short_conv_backward_cpu(const torch::Tensor& x, const torch::Tensor& w,
                                                     const torch::Tensor& dy, bool need_dx,
                                                     bool need_dw, bool need_dbias) {
  torch::Tensor dx, dw, db;
  if (need_dx) dx = torch::empty({x.size(0), x.size(1), x.size(2)}, x.options());
  if (need_dw) dw = torch::empty_like(w);
  if (need_dbias) db = torch::empty({x.size(1)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "short_conv_backward_cpu",
                             [&] { backward<scalar_t>(x, w, dy, dx, dw, db); });
  return {dx, dw, db};
}

}  // namespace herd::ops::detail
