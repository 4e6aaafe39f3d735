// CUDA launchers for kernels/squared_relu.cuh: grid-stride elementwise loops; dbias from
// kSquaredReluBiasBlocks fixed row blocks (one thread per (block, column)) summed in block
// order by a second kernel, so the sums do not depend on scheduling (no atomics).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/device_type.cuh"
#include "kernels/squared_relu.cuh"

namespace herd::kernels {
namespace {

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ Acc<T> bias_at(const T* bias, int64_t f) {
  return bias ? static_cast<Acc<T>>(bias[f]) : Acc<T>(0);
}

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, const T* __restrict__ bias,
                               T* __restrict__ y, int64_t n, int64_t F) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = static_cast<T>(squared_relu_value<Acc<T>>(x[i], bias_at(bias, i % F)));
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ x, const T* __restrict__ bias,
                                const T* __restrict__ dy, T* __restrict__ dx, int64_t n,
                                int64_t F) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = static_cast<T>(squared_relu_grad<Acc<T>>(x[i], bias_at(bias, i % F), dy[i]));
}

// Thread (blk, f): dx over the rows of block blk in column f, and their sum.
template <typename T>
__global__ void backward_bias_kernel(const T* __restrict__ x, const T* __restrict__ bias,
                                     const T* __restrict__ dy, T* __restrict__ dx,
                                     Acc<T>* __restrict__ partial, int64_t rows, int64_t F,
                                     int64_t blocks) {
  const int64_t f = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, blk = blockIdx.y;
  if (f >= F) return;
  const Acc<T> b = static_cast<Acc<T>>(bias[f]);
  Acc<T> acc = Acc<T>(0);
  const int64_t end = squared_relu_block_begin(rows, blocks, blk + 1);
  for (int64_t r = squared_relu_block_begin(rows, blocks, blk); r < end; ++r) {
    const Acc<T> g = squared_relu_grad<Acc<T>>(x[r * F + f], b, dy[r * F + f]);
    dx[r * F + f] = static_cast<T>(g);
    acc += g;
  }
  partial[blk * F + f] = acc;
}

template <typename T>
__global__ void bias_sum_kernel(const Acc<T>* __restrict__ partial, T* __restrict__ dbias,
                                int64_t F, int64_t blocks) {
  const int64_t f = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (f >= F) return;
  Acc<T> s = Acc<T>(0);
  for (int64_t blk = 0; blk < blocks; ++blk) s += partial[blk * F + f];
  dbias[f] = static_cast<T>(s);
}

}  // namespace

template <typename T>
int squared_relu_forward_cuda(const T* x, const T* bias, T* y, int64_t rows, int64_t F,
                              void* stream) {
  using D = DeviceType<T>;
  const int64_t n = rows * F;
  if (n == 0) return 0;
  forward_kernel<D><<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const D*>(x), reinterpret_cast<const D*>(bias), reinterpret_cast<D*>(y), n,
      F);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int squared_relu_backward_cuda(const T* x, const T* bias, const T* dy, T* dx, T* dbias,
                               void* dbias_partial, int64_t rows, int64_t F, void* stream) {
  using D = DeviceType<T>;
  const int64_t n = rows * F;
  if (n == 0) return 0;
  auto s = static_cast<cudaStream_t>(stream);
  auto xd = reinterpret_cast<const D*>(x);
  auto bd = reinterpret_cast<const D*>(bias);
  auto gd = reinterpret_cast<const D*>(dy);
  auto dxd = reinterpret_cast<D*>(dx);
  if (!dbias) {
    backward_kernel<D><<<grid_for(n), kThreads, 0, s>>>(xd, bd, gd, dxd, n, F);
    return static_cast<int>(cudaGetLastError());
  }
  const int64_t blocks = std::min(rows, kSquaredReluBiasBlocks);
  auto partial = static_cast<Acc<D>*>(dbias_partial);
  const dim3 grid(static_cast<unsigned>((F + kThreads - 1) / kThreads),
                  static_cast<unsigned>(blocks));
  backward_bias_kernel<D><<<grid, kThreads, 0, s>>>(xd, bd, gd, dxd, partial, rows, F, blocks);
  bias_sum_kernel<D><<<static_cast<unsigned>((F + kThreads - 1) / kThreads), kThreads, 0, s>>>(
      partial, reinterpret_cast<D*>(dbias), F, blocks);
  return static_cast<int>(cudaGetLastError());
}

#define HERD_SQUARED_RELU_INSTANTIATE(T)                                                           \
  template int squared_relu_forward_cuda<T>(const T*, const T*, T*, int64_t, int64_t, void*);      \
  template int squared_relu_backward_cuda<T>(const T*, const T*, const T*, T*, T*, void*, int64_t, \
                                             int64_t, void*);
HERD_SQUARED_RELU_INSTANTIATE(float)
HERD_SQUARED_RELU_INSTANTIATE(double)
HERD_SQUARED_RELU_INSTANTIATE(uint16_t)
#undef HERD_SQUARED_RELU_INSTANTIATE

}  // namespace herd::kernels
