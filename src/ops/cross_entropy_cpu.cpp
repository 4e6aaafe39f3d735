// CPU fast path of the per-row cross-entropy pass (kernels/cross_entropy.cuh): rows of a
// chunk in parallel; each row is read while hot in cache by a max pass, an exp-sum pass and
// (with a gradient) a scaling pass. The float passes are plain loops that the compiler
// vectorizes, built for AVX-512, AVX2 and baseline x86-64 and picked at load time; partial
// sums keep a fixed order (the results do not depend on the vector width).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "kernels/cross_entropy.cuh"
#include "ops/cross_entropy_impl.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HERD_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HERD_CPU_CLONES
#endif

namespace herd::ops::detail {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kBlock = 512;  // exp-sum: float sums within a block, double across blocks

// A float's bits as an int32 that orders like the float (negative NaNs below -inf, positive
// ones above +inf): integer maxima vectorize where floating-point selects do not. The map is
// its own inverse.
inline int32_t order_key(int32_t b) {
  return b ^ ((b >> 31) & 0x7fffffff);
}

HERD_CPU_CLONES float row_max_f32(const float* z, int64_t V) {
  int32_t lanes[kLanes];
  std::fill(lanes, lanes + kLanes, std::numeric_limits<int32_t>::min());
  int64_t j = 0;
  for (; j + kLanes <= V; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const int32_t k = order_key(kernels::float_bits(z[j + l]));
      const int32_t gt = -static_cast<int32_t>(k > lanes[l]);
      lanes[l] = (k & gt) | (lanes[l] & ~gt);
    }
  int32_t best = std::numeric_limits<int32_t>::min();
  for (int l = 0; l < kLanes; ++l) best = std::max(best, lanes[l]);
  for (; j < V; ++j) best = std::max(best, order_key(kernels::float_bits(z[j])));
  return kernels::bits_float(order_key(best));
}

// The first j with z[j] == m (the argmax), by blocks: a vectorized "any" per block, then a
// scan of the block that has it.
HERD_CPU_CLONES int64_t first_index_f32(const float* z, int64_t V, float m) {
  constexpr int64_t kScan = 256;
  for (int64_t b = 0; b < V; b += kScan) {
    const int64_t e = std::min(V, b + kScan);
    int32_t any = 0;
    for (int64_t j = b; j < e; ++j) any |= static_cast<int32_t>(z[j] == m);
    if (!any) continue;
    for (int64_t j = b; j < e; ++j)
      if (z[j] == m) return j;
  }
  return 0;  // a row of NaNs
}

// sum_j exp(z_j - m); with `store` the exponentials overwrite z.
HERD_CPU_CLONES double exp_sum_f32(float* z, int64_t V, float m, bool store) {
  double total = 0;
  float e[kBlock];
  for (int64_t b = 0; b < V; b += kBlock) {
    const int64_t n = std::min(kBlock, V - b);
    for (int64_t j = 0; j < n; ++j) e[j] = kernels::softmax_exp(z[b + j], m);
    if (store)
      for (int64_t j = 0; j < n; ++j) z[b + j] = e[j];
    float lanes[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += e[j + l];
    double s = 0;
    for (int l = 0; l < kLanes; ++l) s += lanes[l];
    for (; j < n; ++j) s += e[j];
    total += s;
  }
  return total;
}

HERD_CPU_CLONES void scale_f32(float* z, int64_t V, float c) {
  for (int64_t j = 0; j < V; ++j) z[j] = kernels::row_grad<float>(z[j], c, false, 0.0f);
}

// Generic (double, bfloat16) versions of the same passes.
template <typename T, typename A>
A row_max(const T* z, int64_t V) {
  A m = -std::numeric_limits<A>::infinity();
  for (int64_t j = 0; j < V; ++j) m = static_cast<A>(z[j]) > m ? static_cast<A>(z[j]) : m;
  return m;
}

template <typename T, typename A>
int64_t first_index(const T* z, int64_t V, A m) {
  for (int64_t j = 0; j < V; ++j)
    if (static_cast<A>(z[j]) == m) return j;
  return 0;
}

template <typename T, typename A>
double exp_sum(const T* z, int64_t V, A m) {
  double s = 0;
  for (int64_t j = 0; j < V; ++j)
    s += static_cast<double>(kernels::softmax_exp(static_cast<A>(z[j]), m));
  return s;
}

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
void rows(T* zp, int64_t R, int64_t V, const int64_t* tp, int64_t ignore, double scale, bool grad,
          Acc<T>* loss, int64_t* argmax) {
  using A = Acc<T>;
  constexpr bool kFloat = std::is_same_v<T, float>;
  at::parallel_for(0, R, std::max<int64_t>(1, (1 << 16) / V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* z = zp + r * V;
      const int64_t t = tp[r];
      A m;
      if constexpr (kFloat)
        m = row_max_f32(z, V);
      else
        m = row_max<T, A>(z, V);
      if (argmax) {
        if constexpr (kFloat)
          argmax[r] = first_index_f32(z, V, m);
        else
          argmax[r] = first_index<T, A>(z, V, m);
      }
      if (t == ignore) {
        loss[r] = A(0);
        if (grad) std::fill(z, z + V, T(0));
        continue;
      }
      const A z_t = static_cast<A>(z[t]);
      double s;
      if constexpr (kFloat)
        s = exp_sum_f32(z, V, m, grad);  // with a gradient, z keeps the exponentials
      else
        s = exp_sum<T, A>(z, V, m);
      loss[r] = static_cast<A>(kernels::row_loss<double>(m, s, z_t));
      if (!grad) continue;
      const A c = static_cast<A>(scale / s), sc = static_cast<A>(scale);
      if constexpr (kFloat) {
        scale_f32(z, V, c);
      } else {
        for (int64_t j = 0; j < V; ++j)
          z[j] = static_cast<T>(
              kernels::row_grad<A>(kernels::softmax_exp(static_cast<A>(z[j]), m), c, false, sc));
      }
      z[t] = static_cast<T>(kernels::row_grad<A>(kernels::softmax_exp(z_t, m), c, true, sc));
    }
  });
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> cross_entropy_rows_cpu(torch::Tensor& z,
                                                               const torch::Tensor& targets,
                                                               int64_t ignore_index, double scale,
                                                               bool grad, bool want_argmax) {
  const int64_t R = z.size(0), V = z.size(1);
  const auto acc = z.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto loss = torch::empty({R}, z.options().dtype(acc));
  torch::Tensor argmax;
  if (want_argmax) argmax = torch::empty({R}, targets.options());
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, z.scalar_type(), "cross_entropy_rows_cpu", [&] {
    rows<scalar_t>(z.data_ptr<scalar_t>(), R, V, targets.data_ptr<int64_t>(), ignore_index, scale,
                   grad, loss.data_ptr<Acc<scalar_t>>(),
                   want_argmax ? argmax.data_ptr<int64_t>() : nullptr);
  });
  return {loss, argmax};
}

}  // namespace herd::ops::detail
