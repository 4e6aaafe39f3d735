// CPU fast path of the per-row cross-entropy pass (kernels/cross_entropy.cuh): rows of a
// chunk in parallel; each row is read three times while it is hot in cache (max, exp-sum,
// gradient). The loops keep kLanes independent accumulators so that the compiler vectorizes
// them without reassociating anything (the results do not depend on the vector width).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "kernels/cross_entropy.cuh"
#include "ops/cross_entropy_impl.h"

namespace herd::ops::detail {
namespace {

constexpr int kLanes = 16;

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
Acc<T> row_max_value(const T* z, int64_t V) {
  using A = Acc<T>;
  A lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -std::numeric_limits<A>::infinity());
  int64_t j = 0;
  for (; j + kLanes <= V; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const A v = static_cast<A>(z[j + l]);
      lanes[l] = v > lanes[l] ? v : lanes[l];
    }
  A m = -std::numeric_limits<A>::infinity();
  for (int l = 0; l < kLanes; ++l) m = lanes[l] > m ? lanes[l] : m;
  for (; j < V; ++j) m = static_cast<A>(z[j]) > m ? static_cast<A>(z[j]) : m;
  return m;
}

// sum_j exp(z_j - m) in double; stores the exponentials over z when `store` (float/double).
template <typename T, bool Store>
double exp_sum(T* z, int64_t V, Acc<T> m) {
  double lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= V; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const Acc<T> e = kernels::softmax_exp(static_cast<Acc<T>>(z[j + l]), m);
      if constexpr (Store) z[j + l] = e;
      lanes[l] += static_cast<double>(e);
    }
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += lanes[l];
  for (; j < V; ++j) {
    const Acc<T> e = kernels::softmax_exp(static_cast<Acc<T>>(z[j]), m);
    if constexpr (Store) z[j] = e;
    s += static_cast<double>(e);
  }
  return s;
}

template <typename T>
void rows(T* zp, int64_t R, int64_t V, const int64_t* tp, int64_t ignore, double scale, bool grad,
          Acc<T>* loss, int64_t* argmax) {
  using A = Acc<T>;
  // Float and double rows keep their exponentials between the sum and the gradient; bfloat16
  // ones recompute them (rounding them to bf16 first would cost accuracy).
  constexpr bool kStore = !std::is_same_v<T, c10::BFloat16>;
  at::parallel_for(0, R, std::max<int64_t>(1, (1 << 16) / V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* z = zp + r * V;
      const int64_t t = tp[r];
      const A m = row_max_value(z, V);
      int64_t first = 0;
      while (first < V - 1 && static_cast<A>(z[first]) != m) ++first;
      argmax[r] = first;
      if (t == ignore) {
        loss[r] = A(0);
        if (grad) std::fill(z, z + V, T(0));
        continue;
      }
      const A z_t = static_cast<A>(z[t]);
      const double s = grad && kStore ? exp_sum<T, kStore>(z, V, m) : exp_sum<T, false>(z, V, m);
      loss[r] = static_cast<A>(kernels::row_loss<double>(m, s, z_t));
      if (!grad) continue;
      const A c = static_cast<A>(scale / s), sc = static_cast<A>(scale);
      if constexpr (kStore) {
        for (int64_t j = 0; j < V; ++j) z[j] = kernels::row_grad<A>(z[j], c, false, sc);
        z[t] = kernels::row_grad<A>(kernels::softmax_exp(z_t, m), c, true, sc);
      } else {
        for (int64_t j = 0; j < V; ++j)
          z[j] = static_cast<T>(
              kernels::row_grad<A>(kernels::softmax_exp(static_cast<A>(z[j]), m), c, false, sc));
        z[t] = static_cast<T>(kernels::row_grad<A>(kernels::softmax_exp(z_t, m), c, true, sc));
      }
    }
  });
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> cross_entropy_rows_cpu(torch::Tensor& z,
                                                               const torch::Tensor& targets,
                                                               int64_t ignore_index, double scale,
                                                               bool grad) {
  const int64_t R = z.size(0), V = z.size(1);
  const auto acc = z.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto loss = torch::empty({R}, z.options().dtype(acc));
  auto argmax = torch::empty({R}, targets.options());
  AT_DISPATCH_FLOATING_TYPES_AND(torch::kBFloat16, z.scalar_type(), "cross_entropy_rows_cpu", [&] {
    rows<scalar_t>(z.data_ptr<scalar_t>(), R, V, targets.data_ptr<int64_t>(), ignore_index, scale,
                   grad, loss.data_ptr<Acc<scalar_t>>(), argmax.data_ptr<int64_t>());
  });
  return {loss, argmax};
}

}  // namespace herd::ops::detail
