// CPU fast path of add_layer_norm: kernels/add_layer_norm.cuh's functions in at::parallel_for
// loops. Forward: rows in parallel, each row's sum written once and normalized from cache.
// Backward: kAddLayerNormParamBlocks fixed row blocks in parallel, each writing ds and its own
// dweight/dbias partials (double), summed over the blocks in order.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/add_layer_norm.cuh"
#include "ops/add_layer_norm_impl.h"

namespace herd::ops::detail {
namespace {

// About this many elements per parallel task.
constexpr int64_t kGrain = 1 << 14;

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

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
      const T* s = hp + r * D;
      double sum = 0;  // row sums in double: D terms
      if (dp) {
        const TD* dr = dp + r * D;
        T* sr = sp + r * D;
        for (int64_t j = 0; j < D; ++j) {
          sr[j] = static_cast<T>(static_cast<A>(s[j]) + static_cast<A>(dr[j]));
          sum += static_cast<double>(static_cast<A>(sr[j]));
        }
        s = sr;
      } else {
        for (int64_t j = 0; j < D; ++j) sum += static_cast<double>(static_cast<A>(s[j]));
      }
      const A mean = static_cast<A>(sum / static_cast<double>(D));
      double sq = 0;
      for (int64_t j = 0; j < D; ++j) {
        const A d = static_cast<A>(s[j]) - mean;
        sq += static_cast<double>(d * d);
      }
      const A rstd = static_cast<A>(kernels::layer_norm_rstd<double>(sq, D, eps));
      T* yr = yp + r * D;
      for (int64_t j = 0; j < D; ++j)
        yr[j] = static_cast<T>(kernels::layer_norm_value<A>(
            static_cast<A>(s[j]), mean, rstd, static_cast<A>(wp[j]), static_cast<A>(bp[j])));
      mp[r] = mean;
      rp[r] = rstd;
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
  // Per block: dweight partials, then dbias partials.
  std::vector<double> partial(params ? static_cast<size_t>(2 * blocks * D) : 0, 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      double* pw = params ? partial.data() + 2 * blk * D : nullptr;
      double* pb = params ? pw + D : nullptr;
      const int64_t end = kernels::add_layer_norm_block_begin(rows, blocks, blk + 1);
      for (int64_t r = kernels::add_layer_norm_block_begin(rows, blocks, blk); r < end; ++r) {
        const T *sr = sp + r * D, *gr = gp + r * D;
        const A m = mp[r], rs = rp[r];
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < D; ++j) {
          const A xhat = (static_cast<A>(sr[j]) - m) * rs, dyj = static_cast<A>(gr[j]);
          const A gj = dyj * static_cast<A>(wp[j]);
          sg += static_cast<double>(gj);
          sgx += static_cast<double>(gj * xhat);
          if (pw) {
            pw[j] += static_cast<double>(dyj * xhat);
            pb[j] += static_cast<double>(dyj);
          }
        }
        if (!dsp) continue;
        const A mean_g = static_cast<A>(sg / static_cast<double>(D));
        const A mean_gx = static_cast<A>(sgx / static_cast<double>(D));
        T* dr = dsp + r * D;
        const T* ir = ip ? ip + r * D : nullptr;
        for (int64_t j = 0; j < D; ++j) {
          const A xhat = (static_cast<A>(sr[j]) - m) * rs;
          const A gj = static_cast<A>(gr[j]) * static_cast<A>(wp[j]);
          dr[j] = static_cast<T>(kernels::layer_norm_input_grad<A>(
              gj, xhat, mean_g, mean_gx, rs, ir ? static_cast<A>(ir[j]) : A(0)));
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
