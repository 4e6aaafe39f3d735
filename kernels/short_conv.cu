// CUDA launchers for kernels/short_conv.cuh: one thread per output for y and dx (mapped by
// short_conv_point_of: coalesced for channels-last inputs), one block per (channel, tap) for
// dw/dbias so the reductions are deterministic (no atomics). bfloat16 sums in float.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/device_type.cuh"
#include "kernels/short_conv.cuh"

namespace herd::kernels {
namespace {

template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};

// D: the device element type; W: the taps'; Acc: the sums'.
template <typename D, typename W, typename Acc>
__global__ void forward_kernel(const D* __restrict__ x, Strided3 xd, const W* __restrict__ w,
                               int64_t K, const W* __restrict__ bias, D* __restrict__ y) {
  const int64_t n = xd.B * xd.C * xd.L;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ShortConvPoint p = short_conv_point_of(i, xd);
    Acc acc = short_conv_fwd_point<Acc>(x + p.b * xd.sb + p.c * xd.sc, xd.st, w + p.c * K, K, p.t);
    if (bias) acc += static_cast<Acc>(bias[p.c]);
    y[p.out] = static_cast<D>(acc);
  }
}

template <typename D, typename W, typename Acc>
__global__ void dx_kernel(const D* __restrict__ dy, Strided3 dyd, const W* __restrict__ w,
                          int64_t K, D* __restrict__ dx) {
  const int64_t n = dyd.B * dyd.C * dyd.L;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const ShortConvPoint p = short_conv_point_of(i, dyd);
    dx[p.out] = static_cast<D>(short_conv_dx_point<Acc>(dy + p.b * dyd.sb + p.c * dyd.sc, dyd.st,
                                                        w + p.c * K, K, dyd.L, p.t));
  }
}

// Sum over the block; the result is valid in thread 0. blockDim.x is a multiple of 32.
template <typename Acc>
__device__ Acc block_sum(Acc v) {
  __shared__ Acc partial[kThreads / 32];
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x / 32) ? partial[lane] : Acc(0);
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  }
  return v;
}

// Block (c, j): dw[c, j] (j < K) or dbias[c] (j == K), summed over batch and time.
template <typename D, typename W, typename Acc>
__global__ void dw_kernel(const D* __restrict__ x, Strided3 xd, const D* __restrict__ dy,
                          Strided3 dyd, int64_t K, W* __restrict__ dw, W* __restrict__ dbias) {
  const int64_t c = blockIdx.x, j = blockIdx.y;
  if (j == K ? !dbias : !dw) return;  // uniform across the block
  const int64_t n = xd.B * xd.L;
  Acc acc = Acc(0);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t b = i / xd.L, t = i % xd.L;
    acc += short_conv_dw_term<Acc>(x + b * xd.sb + c * xd.sc, xd.st, dy + b * dyd.sb + c * dyd.sc,
                                   dyd.st, K, t, j);
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) (j == K ? dbias[c] : dw[c * K + j]) = static_cast<W>(acc);
}

}  // namespace

template <typename T, typename W>
int short_conv_forward_cuda(const T* x, Strided3 xd, const W* w, int64_t K, const W* bias, T* y,
                            void* stream) {
  using D = DeviceType<T>;
  using WD = DeviceType<W>;
  const int64_t n = xd.B * xd.C * xd.L;
  if (n == 0) return 0;
  forward_kernel<D, WD, typename AccOf<T>::type>
      <<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
          reinterpret_cast<const D*>(x), xd, reinterpret_cast<const WD*>(w), K,
          reinterpret_cast<const WD*>(bias), reinterpret_cast<D*>(y));
  return static_cast<int>(cudaGetLastError());
}

template <typename T, typename W>
int short_conv_backward_cuda(const T* x, Strided3 xd, const W* w, int64_t K, const T* dy,
                             Strided3 dyd, T* dx, W* dw, W* dbias, void* stream) {
  using D = DeviceType<T>;
  using WD = DeviceType<W>;
  using Acc = typename AccOf<T>::type;
  const int64_t n = xd.B * xd.C * xd.L;
  if (n == 0) return 0;
  auto s = static_cast<cudaStream_t>(stream);
  const auto* xp = reinterpret_cast<const D*>(x);
  const auto* dyp = reinterpret_cast<const D*>(dy);
  const auto* wp = reinterpret_cast<const WD*>(w);
  if (dx)
    dx_kernel<D, WD, Acc>
        <<<grid_for(n), kThreads, 0, s>>>(dyp, dyd, wp, K, reinterpret_cast<D*>(dx));
  if (dw || dbias) {
    const dim3 grid(static_cast<unsigned>(xd.C), static_cast<unsigned>(K + 1));
    dw_kernel<D, WD, Acc><<<grid, kThreads, 0, s>>>(xp, xd, dyp, dyd, K, reinterpret_cast<WD*>(dw),
                                                    reinterpret_cast<WD*>(dbias));
  }
  return static_cast<int>(cudaGetLastError());
}

#define HERD_INSTANTIATE(T, W)                                                                    \
  template int short_conv_forward_cuda<T, W>(const T*, Strided3, const W*, int64_t, const W*, T*, \
                                             void*);                                              \
  template int short_conv_backward_cuda<T, W>(const T*, Strided3, const W*, int64_t, const T*,    \
                                              Strided3, T*, W*, W*, void*);
HERD_INSTANTIATE(float, float)
HERD_INSTANTIATE(double, double)
HERD_INSTANTIATE(uint16_t, float)     // bfloat16 activations, float taps (autocast)
HERD_INSTANTIATE(uint16_t, uint16_t)  // bfloat16 throughout
#undef HERD_INSTANTIATE

}  // namespace herd::kernels
