// CPU fast path of squared_relu: kernels/squared_relu.cuh's point functions in at::parallel_for
// loops; rows in parallel, dbias from fixed row blocks summed in order (deterministic).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/squared_relu.cuh"
#include "ops/squared_relu_impl.h"

namespace herd::ops::detail {
namespace {

// About this many elements per parallel task.
constexpr int64_t kGrain = 1 << 15;

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
void forward(const torch::Tensor& x, const torch::Tensor& bias, torch::Tensor& y) {
  const T* xp = x.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  if (!bias.defined()) {
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        yp[i] = static_cast<T>(kernels::squared_relu_value<Acc<T>>(xp[i], Acc<T>(0)));
    });
    return;
  }
  const int64_t F = bias.numel(), rows = x.numel() / F;
  const T* bp = bias.data_ptr<T>();
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / F), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = xp + r * F;
      T* yr = yp + r * F;
      for (int64_t f = 0; f < F; ++f)
        yr[f] = static_cast<T>(kernels::squared_relu_value<Acc<T>>(xr[f], Acc<T>(bp[f])));
    }
  });
}

template <typename T>
void backward(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& dy,
              torch::Tensor& dx, torch::Tensor& dbias) {
  const T* xp = x.data_ptr<T>();
  const T* gp = dy.data_ptr<T>();
  T* out = dx.data_ptr<T>();
  if (!bias.defined()) {
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        out[i] = static_cast<T>(kernels::squared_relu_grad<Acc<T>>(xp[i], Acc<T>(0), gp[i]));
    });
    return;
  }
  const int64_t F = bias.numel(), rows = x.numel() / F;
  const T* bp = bias.data_ptr<T>();
  if (!dbias.defined()) {
    at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / F), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t f = 0; f < F; ++f)
          out[r * F + f] = static_cast<T>(
              kernels::squared_relu_grad<Acc<T>>(xp[r * F + f], Acc<T>(bp[f]), gp[r * F + f]));
    });
    return;
  }
  // dx and the block partials of dbias in one pass; partial sums in double.
  const int64_t blocks = std::min(rows, kernels::kSquaredReluBiasBlocks);
  std::vector<double> partial(static_cast<size_t>(blocks * F), 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      double* acc = partial.data() + blk * F;
      const int64_t end = kernels::squared_relu_block_begin(rows, blocks, blk + 1);
      for (int64_t r = kernels::squared_relu_block_begin(rows, blocks, blk); r < end; ++r) {
        const T *xr = xp + r * F, *gr = gp + r * F;
        T* dr = out + r * F;
        for (int64_t f = 0; f < F; ++f) {
          const Acc<T> g = kernels::squared_relu_grad<Acc<T>>(xr[f], Acc<T>(bp[f]), gr[f]);
          dr[f] = static_cast<T>(g);
          acc[f] += static_cast<double>(g);
        }
      }
    }
  });
  T* db = dbias.data_ptr<T>();
  at::parallel_for(0, F, kGrain / std::max<int64_t>(1, blocks), [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      double s = 0;
      for (int64_t blk = 0; blk < blocks; ++blk) s += partial[blk * F + f];
      db[f] = static_cast<T>(s);
    }
  });
}

}  // namespace

torch::Tensor squared_relu_forward_cpu(const torch::Tensor& x, const torch::Tensor& bias) {
  auto y = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, x.scalar_type(), "squared_relu_cpu",
                                 [&] { forward<scalar_t>(x, bias, y); });
  return y;
}

std::array<torch::Tensor, 2> squared_relu_backward_cpu(const torch::Tensor& x,
                                                       const torch::Tensor& bias,
                                                       const torch::Tensor& dy, bool need_dbias) {
  auto dx = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  torch::Tensor db;
  if (bias.defined() && need_dbias) db = torch::empty_like(bias);
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, x.scalar_type(), "squared_relu_bwd_cpu",
                                 [&] { backward<scalar_t>(x, bias, dy, dx, db); });
  return {dx, db};
}

}  // namespace herd::ops::detail
