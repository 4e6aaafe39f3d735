// CPU fast path of add_layer_norm: kernels/add_layer_norm.cuh's functions in at::parallel_for
// loops. Forward: rows in parallel, each row's sum written once and normalized from cache.
// Backward: kAddLayerNormParamBlocks fixed row blocks in parallel, each writing ds and its own
// dweight/dbias partials (double), summed over the blocks in order. Row sums run in kLanes
// accumulators (then double), a fixed order that the compiler vectorizes; the float rows are
// built for AVX-512, AVX2 and baseline x86-64, picked at load time.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/add_layer_norm.cuh"
#include "ops/add_layer_norm_impl.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HERD_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define HERD_INLINE inline __attribute__((always_inline))
#else
#define HERD_CPU_CLONES
#define HERD_INLINE inline
#endif

namespace herd::ops::detail {
namespace {

// About this many elements per parallel task.
constexpr int64_t kGrain = 1 << 14;
constexpr int kLanes = 64;
// dweight/dbias terms are summed in A over this many rows, then added to double partials.
constexpr int64_t kFlushRows = 16;

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Sums over j < D of term(j, l) for each of N outputs, in kLanes partial sums of A per output
// (a fixed order the compiler vectorizes), then added in double. term fills out[0..N).
template <int N, typename A, typename F>
HERD_INLINE void lane_sums(int64_t D, const F& term, double* sums) {
  A lanes[N][kLanes] = {};
  A out[N];
  int64_t j = 0;
  for (; j + kLanes <= D; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      term(j + l, out);
      for (int k = 0; k < N; ++k) lanes[k][l] += out[k];
    }
  for (int k = 0; k < N; ++k) {
    sums[k] = 0;
    for (int l = 0; l < kLanes; ++l) sums[k] += static_cast<double>(lanes[k][l]);
  }
  for (; j < D; ++j) {
    term(j, out);
    for (int k = 0; k < N; ++k) sums[k] += static_cast<double>(out[k]);
  }
}

// One row forward: s = h + delta (written to s_out when there is a delta; summed in the same
// pass), then the squared deviations, then y; mean and rstd out.
template <typename T, typename TD>
HERD_INLINE void forward_row(const T* h, const TD* delta, const T* w, const T* b, double eps,
                             int64_t D, T* s_out, T* y, Acc<T>& mean_out, Acc<T>& rstd_out) {
  using A = Acc<T>;
  const T* s = delta ? s_out : h;
  double sum;
  if (delta)
    lane_sums<1, A>(
        D,
        [&](int64_t j, A* o) {
          s_out[j] = static_cast<T>(static_cast<A>(h[j]) + static_cast<A>(delta[j]));
          o[0] = static_cast<A>(s_out[j]);
        },
        &sum);
  else
    lane_sums<1, A>(
        D, [&](int64_t j, A* o) { o[0] = static_cast<A>(h[j]); }, &sum);
  const A mean = static_cast<A>(sum / static_cast<double>(D));
  double sq;
  lane_sums<1, A>(
      D,
      [&](int64_t j, A* o) {
        const A d = static_cast<A>(s[j]) - mean;
        o[0] = d * d;
      },
      &sq);
  const A rstd = static_cast<A>(kernels::layer_norm_rstd<double>(sq, D, eps));
  for (int64_t j = 0; j < D; ++j)
    y[j] = static_cast<T>(kernels::layer_norm_value<A>(static_cast<A>(s[j]), mean, rstd,
                                                       static_cast<A>(w[j]), static_cast<A>(b[j])));
  mean_out = mean;
  rstd_out = rstd;
}

HERD_CPU_CLONES void forward_row_f32(const float* h, const float* delta, const float* w,
                                     const float* b, double eps, int64_t D, float* s_out, float* y,
                                     float& mean, float& rstd) {
  forward_row<float, float>(h, delta, w, b, eps, D, s_out, y, mean, rstd);
}

// One row backward: one pass for the row sums of g and g * xhat and the row's dweight/dbias
// terms (added to the block's partials pw/pb), one for ds (when wanted).
template <typename T>
HERD_INLINE void backward_row(const T* s, const T* w, Acc<T> m, Acc<T> rs, const T* dy,
                              const T* ds_in, T* ds, Acc<T>* pw, Acc<T>* pb, int64_t D) {
  using A = Acc<T>;
  auto xhat = [&](int64_t j) { return (static_cast<A>(s[j]) - m) * rs; };
  auto gw = [&](int64_t j) { return static_cast<A>(dy[j]) * static_cast<A>(w[j]); };
  if (pw)
    for (int64_t j = 0; j < D; ++j) {
      pw[j] += static_cast<A>(dy[j]) * xhat(j);
      pb[j] += static_cast<A>(dy[j]);
    }
  if (!ds) return;
  double sums[2];
  lane_sums<2, A>(
      D,
      [&](int64_t j, A* o) {
        o[0] = gw(j);
        o[1] = o[0] * xhat(j);
      },
      sums);
  const A mean_g = static_cast<A>(sums[0] / static_cast<double>(D));
  const A mean_gx = static_cast<A>(sums[1] / static_cast<double>(D));
  if (ds_in)
    for (int64_t j = 0; j < D; ++j)
      ds[j] = static_cast<T>(kernels::layer_norm_input_grad<A>(gw(j), xhat(j), mean_g, mean_gx, rs,
                                                               static_cast<A>(ds_in[j])));
  else
    for (int64_t j = 0; j < D; ++j)
      ds[j] = static_cast<T>(
          kernels::layer_norm_input_grad<A>(gw(j), xhat(j), mean_g, mean_gx, rs, A(0)));
}

HERD_CPU_CLONES void backward_row_f32(const float* s, const float* w, float m, float rs,
                                      const float* dy, const float* ds_in, float* ds, float* pw,
                                      float* pb, int64_t D) {
  backward_row<float>(s, w, m, rs, dy, ds_in, ds, pw, pb, D);
}

template <typename T, typename TD>
void forward(const torch::Tensor& h, const torch::Tensor& delta, const torch::Tensor& weight,
             const torch::Tensor& bias, double eps, AddNormForward& out) {
  using A = Acc<T>;
  const int64_t D = h.size(-1), rows = h.numel() / D;
  const T* hp = h.data_ptr<T>();
  const TD* dp = delta.defined() ? delta.data_ptr<TD>() : nullptr;
  const T* wp = weight.data_ptr<T>();
  const T* bp = bias.data_ptr<T>();
  T* sp = out.sum.defined() ? out.sum.data_ptr<T>() : nullptr;
  T* yp = out.normed.data_ptr<T>();
  A* mp = out.mean.data_ptr<A>();
  A* rp = out.rstd.data_ptr<A>();
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / D), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const TD* dr = dp ? dp + r * D : nullptr;
      T* sr = sp ? sp + r * D : nullptr;
      if constexpr (std::is_same_v<T, float> && std::is_same_v<TD, float>)
        forward_row_f32(hp + r * D, dr, wp, bp, eps, D, sr, yp + r * D, mp[r], rp[r]);
      else
        forward_row<T, TD>(hp + r * D, dr, wp, bp, eps, D, sr, yp + r * D, mp[r], rp[r]);
    }
  });
}

template <typename T>
void backward(const torch::Tensor& s, const torch::Tensor& weight, const torch::Tensor& mean,
              const torch::Tensor& rstd, const torch::Tensor& dy, const torch::Tensor& ds_in,
              AddNormGrads& g) {
  using A = Acc<T>;
  const int64_t D = s.size(-1), rows = s.numel() / D;
  const T* sp = s.data_ptr<T>();
  const T* wp = weight.data_ptr<T>();
  const A* mp = mean.data_ptr<A>();
  const A* rp = rstd.data_ptr<A>();
  const T* gp = dy.data_ptr<T>();
  const T* ip = ds_in.defined() ? ds_in.data_ptr<T>() : nullptr;
  T* dsp = g.ds.defined() ? g.ds.data_ptr<T>() : nullptr;
  const bool params = g.dweight.defined() || g.dbias.defined();
  const int64_t blocks = std::min(rows, kernels::kAddLayerNormParamBlocks);
  // Per block: dweight then dbias partials in double, fed by A sums over at most kFlushRows
  // rows (a fixed order: the same sums whatever the threads).
  std::vector<double> partial(params ? static_cast<size_t>(2 * blocks * D) : 0, 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<A> local(params ? static_cast<size_t>(2 * D) : 0);
    for (int64_t blk = b0; blk < b1; ++blk) {
      A* pw = params ? local.data() : nullptr;
      A* pb = params ? pw + D : nullptr;
      const int64_t begin = kernels::add_layer_norm_block_begin(rows, blocks, blk);
      const int64_t end = kernels::add_layer_norm_block_begin(rows, blocks, blk + 1);
      for (int64_t r = begin; r < end; ++r) {
        if (params && (r - begin) % kFlushRows == 0) std::fill(local.begin(), local.end(), A(0));
        const T* ir = ip ? ip + r * D : nullptr;
        T* dr = dsp ? dsp + r * D : nullptr;
        if constexpr (std::is_same_v<T, float>)
          backward_row_f32(sp + r * D, wp, mp[r], rp[r], gp + r * D, ir, dr, pw, pb, D);
        else
          backward_row<T>(sp + r * D, wp, mp[r], rp[r], gp + r * D, ir, dr, pw, pb, D);
        if (params && ((r - begin) % kFlushRows == kFlushRows - 1 || r + 1 == end)) {
          double* out = partial.data() + 2 * blk * D;
          for (int64_t j = 0; j < 2 * D; ++j) out[j] += static_cast<double>(local[j]);
        }
      }
    }
  });
  if (!params) return;
  T* dw = g.dweight.defined() ? g.dweight.data_ptr<T>() : nullptr;
  T* db = g.dbias.defined() ? g.dbias.data_ptr<T>() : nullptr;
  at::parallel_for(0, D, std::max<int64_t>(1, kGrain / blocks), [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      double sw = 0, sb = 0;
      for (int64_t blk = 0; blk < blocks; ++blk) {
        sw += partial[2 * blk * D + j];
        sb += partial[(2 * blk + 1) * D + j];
      }
      if (dw) dw[j] = static_cast<T>(sw);
      if (db) db[j] = static_cast<T>(sb);
    }
  });
}

}  // namespace

AddNormForward add_layer_norm_forward_cpu(const torch::Tensor& h, const torch::Tensor& delta,
                                          const torch::Tensor& weight, const torch::Tensor& bias,
                                          double eps) {
  const int64_t D = h.size(-1), rows = h.numel() / D;
  AddNormForward out;
  if (delta.defined()) out.sum = torch::empty_like(h);
  out.normed = torch::empty_like(h);
  const auto acc = h.options().dtype(acc_dtype(h.scalar_type()));
  out.mean = torch::empty({rows}, acc);
  out.rstd = torch::empty({rows}, acc);
  if (delta.defined() && delta.scalar_type() != h.scalar_type()) {
    HERD_CHECK(h.scalar_type() == torch::kFloat && delta.scalar_type() == torch::kBFloat16,
               "add_layer_norm: no CPU kernel for ", h.scalar_type(), " + ", delta.scalar_type());
    forward<float, c10::BFloat16>(h, delta, weight, bias, eps, out);
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, h.scalar_type(), "add_layer_norm_cpu", [&] {
    forward<scalar_t, scalar_t>(h, delta, weight, bias, eps, out);
  });
  return out;
}

AddNormGrads add_layer_norm_backward_cpu(const torch::Tensor& s, const torch::Tensor& weight,
                                         const torch::Tensor& mean, const torch::Tensor& rstd,
                                         const torch::Tensor& dy, const torch::Tensor& ds_in,
                                         bool need_ds, bool need_dweight, bool need_dbias) {
  AddNormGrads g;
  if (need_ds) g.ds = torch::empty_like(s);
  if (need_dweight) g.dweight = torch::empty_like(weight);
  if (need_dbias) g.dbias = torch::empty_like(weight);
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, s.scalar_type(), "add_layer_norm_bwd_cpu",
                                 [&] { backward<scalar_t>(s, weight, mean, rstd, dy, ds_in, g); });
  return g;
}

}  // namespace herd::ops::detail
