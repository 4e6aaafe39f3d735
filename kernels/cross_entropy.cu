// CUDA launcher for kernels/cross_entropy.cuh: one block per row of a chunk's logits; the
// threads stride over the vocabulary for the max (with its first index), the exp-sum and the
// gradient, each reduced over the block in a fixed order.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/block_reduce.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/device_type.cuh"

namespace herd::kernels {
namespace {

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__global__ void rows_kernel(T* __restrict__ zp, int64_t V, const int64_t* __restrict__ targets,
                            int64_t ignore, double scale, bool grad, Acc<T>* __restrict__ loss,
                            int64_t* __restrict__ argmax) {
  using A = Acc<T>;
  const int64_t r = blockIdx.x;
  T* z = zp + r * V;
  const int64_t t = targets[r];
  RowMax<A> m{-INFINITY, V};
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) row_max_update(m, static_cast<A>(z[j]), j);
  block_max_index_all(m.value, m.index);
  if (threadIdx.x == 0 && argmax) argmax[r] = m.index < V ? m.index : 0;
  if (t == ignore) {
    if (threadIdx.x == 0) loss[r] = A(0);
    if (grad)
      for (int64_t j = threadIdx.x; j < V; j += blockDim.x) z[j] = static_cast<T>(A(0));
    return;
  }
  const A z_t = static_cast<A>(z[t]);
  A s = A(0);
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
    s += softmax_exp(static_cast<A>(z[j]), m.value);
  s = block_sum_all(s);
  if (threadIdx.x == 0) loss[r] = row_loss<A>(m.value, s, z_t);
  if (!grad) return;
  __syncthreads();  // z[t] was read above; it is overwritten below
  const A sc = static_cast<A>(scale), c = sc / s;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
    z[j] = static_cast<T>(row_grad<A>(softmax_exp(static_cast<A>(z[j]), m.value), c, j == t, sc));
}

}  // namespace

template <typename T>
int cross_entropy_rows_cuda(T* z, int64_t rows, int64_t V, const int64_t* targets,
                            int64_t ignore_index, double scale, bool grad, void* loss,
                            int64_t* argmax, void* stream) {
  using D = DeviceType<T>;
  if (rows == 0 || V == 0) return 0;
  rows_kernel<D><<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<D*>(z), V, targets, ignore_index, scale, grad, static_cast<Acc<D>*>(loss),
      argmax);
  return static_cast<int>(cudaGetLastError());
}

template int cross_entropy_rows_cuda<float>(float*, int64_t, int64_t, const int64_t*, int64_t,
                                            double, bool, void*, int64_t*, void*);
template int cross_entropy_rows_cuda<double>(double*, int64_t, int64_t, const int64_t*, int64_t,
                                             double, bool, void*, int64_t*, void*);
template int cross_entropy_rows_cuda<uint16_t>(uint16_t*, int64_t, int64_t, const int64_t*, int64_t,
                                               double, bool, void*, int64_t*, void*);

}  // namespace herd::kernels
