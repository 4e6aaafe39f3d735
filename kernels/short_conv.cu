// CUDA launchers for kernels/short_conv.cuh: one thread per output for y and dx, one block per
// (channel, tap) for dw/dbias so the reductions are deterministic (no atomics).
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/short_conv.cuh"

namespace herd::kernels {
namespace {

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, Strided3 xd, const T* __restrict__ w,
                               int64_t K, const T* __restrict__ bias, T* __restrict__ y) {
  const int64_t n = xd.B * xd.C * xd.L;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i % xd.L, r = i / xd.L, c = r % xd.C, b = r / xd.C;
    T acc = short_conv_fwd_point<T>(x + b * xd.sb + c * xd.sc, xd.st, w + c * K, K, t);
    y[i] = bias ? acc + bias[c] : acc;
  }
}

template <typename T>
__global__ void dx_kernel(const T* __restrict__ dy, Strided3 dyd, const T* __restrict__ w,
                          int64_t K, T* __restrict__ dx) {
  const int64_t n = dyd.B * dyd.C * dyd.L;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t s = i % dyd.L, r = i / dyd.L, c = r % dyd.C, b = r / dyd.C;
    dx[i] = short_conv_dx_point<T>(dy + b * dyd.sb + c * dyd.sc, dyd.st, w + c * K, K, dyd.L, s);
  }
}

// Sum over the block; the result is valid in thread 0. blockDim.x is a multiple of 32.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T partial[kThreads / 32];
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x / 32) ? partial[lane] : T(0);
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  }
  return v;
}

// Block (c, j): dw[c, j] (j < K) or dbias[c] (j == K), summed over batch and time.
template <typename T>
__global__ void dw_kernel(const T* __restrict__ x, Strided3 xd, const T* __restrict__ dy,
                          Strided3 dyd, int64_t K, T* __restrict__ dw, T* __restrict__ dbias) {
  const int64_t c = blockIdx.x, j = blockIdx.y;
  if (j == K ? !dbias : !dw) return;  // uniform across the block
  const int64_t n = xd.B * xd.L;
  T acc = T(0);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t b = i / xd.L, t = i % xd.L;
    acc += short_conv_dw_term<T>(x + b * xd.sb + c * xd.sc, xd.st, dy + b * dyd.sb + c * dyd.sc,
                                 dyd.st, K, t, j);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) (j == K ? dbias[c] : dw[c * K + j]) = acc;
}

}  // namespace

template <typename T>
int short_conv_forward_cuda(const T* x, Strided3 xd, const T* w, int64_t K, const T* bias, T* y,
                            void* stream) {
  const int64_t n = xd.B * xd.C * xd.L;
  if (n == 0) return 0;
  forward_kernel<T>
      <<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, xd, w, K, bias, y);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int short_conv_backward_cuda(const T* x, Strided3 xd, const T* w, int64_t K, const T* dy,
                             Strided3 dyd, T* dx, T* dw, T* dbias, void* stream) {
  const int64_t n = xd.B * xd.C * xd.L;
  if (n == 0) return 0;
  auto s = static_cast<cudaStream_t>(stream);
  if (dx) dx_kernel<T><<<grid_for(n), kThreads, 0, s>>>(dy, dyd, w, K, dx);
  if (dw || dbias) {
    const dim3 grid(static_cast<unsigned>(xd.C), static_cast<unsigned>(K + 1));
    dw_kernel<T><<<grid, kThreads, 0, s>>>(x, xd, dy, dyd, K, dw, dbias);
  }
  return static_cast<int>(cudaGetLastError());
}

template int short_conv_forward_cuda<float>(const float*, Strided3, const float*, int64_t,
                                            const float*, float*, void*);
template int short_conv_forward_cuda<double>(const double*, Strided3, const double*, int64_t,
                                             const double*, double*, void*);
template int short_conv_backward_cuda<float>(const float*, Strided3, const float*, int64_t,
                                             const float*, Strided3, float*, float*, float*, void*);
template int short_conv_backward_cuda<double>(const double*, Strided3, const double*, int64_t,
                                              const double*, Strided3, double*, double*, double*,
                                              void*);

}  // namespace herd::kernels
