// CUDA-only (include from .cu files): the executor of long_conv's steps (kernels/long_conv.cuh)
// shared by the cuFFT path (kernels/long_conv.cu) and the Monarch path
// (kernels/monarch_conv.cu). for_each is a grid-stride kernel over a device lambda, the
// transforms are batched cuFFT plans (cached per length, rows, precision and device, one cache
// for the program) and channel_sum is one block per channel summing in a fixed order.
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "kernels/device_type.cuh"
#include "kernels/long_conv.cuh"

namespace herd::kernels::detail {

template <typename F>
__global__ void each_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    f(i);
}

template <typename Acc, typename F>
__global__ void channel_sum_kernel(int64_t count, F f, Acc* out) {
  __shared__ Acc part[kThreads];
  const int64_t c = blockIdx.x;
  Acc acc = Acc(0);
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) acc += f(c, k);
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[c] = part[0];
}

inline int cufft_status(cufftResult r) {
  return r == CUFFT_SUCCESS ? 0 : kCufftErrorBase + static_cast<int>(r);
}

// Batched real FFT plans by (precision, direction, n, rows, device), made once.
template <typename Acc>
int plan_for(bool forward, int64_t n, int64_t rows, cufftHandle* out) {
  static std::mutex mu;
  static std::map<std::tuple<bool, int64_t, int64_t, int>, cufftHandle> plans;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return static_cast<int>(cudaGetLastError());
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(forward, n, rows, device);
  auto it = plans.find(key);
  if (it == plans.end()) {
    constexpr bool dbl = std::is_same_v<Acc, double>;
    const cufftType type = forward ? (dbl ? CUFFT_D2Z : CUFFT_R2C) : (dbl ? CUFFT_Z2D : CUFFT_C2R);
    int nn = static_cast<int>(n), real_dist = nn, cx_dist = nn / 2 + 1;
    cufftHandle h = 0;
    if (int e = cufft_status(cufftPlanMany(&h, 1, &nn, &nn, 1, forward ? real_dist : cx_dist, &nn,
                                           1, forward ? cx_dist : real_dist, type,
                                           static_cast<int>(rows))))
      return e;
    it = plans.emplace(key, h).first;
  }
  *out = it->second;
  return 0;
}

template <typename Acc>
struct CudaExec {
  cudaStream_t stream;

  template <typename F>
  int for_each(int64_t n, F f) {
    if (n == 0) return 0;
    each_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, f);
    return static_cast<int>(cudaGetLastError());
  }
  template <typename F>
  int channel_sum(int64_t C, int64_t count, F f, Acc* out) {
    channel_sum_kernel<Acc><<<static_cast<unsigned>(C), kThreads, 0, stream>>>(count, f, out);
    return static_cast<int>(cudaGetLastError());
  }
  int copy(Cx<Acc>* dst, const Cx<Acc>* src, int64_t count) {
    return static_cast<int>(
        cudaMemcpyAsync(dst, src, count * sizeof(Cx<Acc>), cudaMemcpyDeviceToDevice, stream));
  }
  int r2c(const Acc* in, Cx<Acc>* out, int64_t n, int64_t rows) {
    cufftHandle h = 0;
    if (int e = plan_for<Acc>(true, n, rows, &h)) return e;
    if (int e = cufft_status(cufftSetStream(h, stream))) return e;
    if constexpr (std::is_same_v<Acc, double>)
      return cufft_status(
          cufftExecD2Z(h, const_cast<double*>(in), reinterpret_cast<cufftDoubleComplex*>(out)));
    else
      return cufft_status(
          cufftExecR2C(h, const_cast<float*>(in), reinterpret_cast<cufftComplex*>(out)));
  }
  int c2r(Cx<Acc>* in, Acc* out, int64_t n, int64_t rows) {
    cufftHandle h = 0;
    if (int e = plan_for<Acc>(false, n, rows, &h)) return e;
    if (int e = cufft_status(cufftSetStream(h, stream))) return e;
    if constexpr (std::is_same_v<Acc, double>)
      return cufft_status(cufftExecZ2D(h, reinterpret_cast<cufftDoubleComplex*>(in), out));
    else
      return cufft_status(cufftExecC2R(h, reinterpret_cast<cufftComplex*>(in), out));
  }
};

// The interface type (uint16_t for bfloat16) as the device type: same layout, field by field.
template <typename T, typename Acc>
LongConvCuda<DeviceType<T>, Acc> on_device(const LongConvCuda<T, Acc>& a) {
  using D = DeviceType<T>;
  static_assert(sizeof(D) == sizeof(T) && sizeof(LongConvCuda<D, Acc>) == sizeof(a));
  LongConvCuda<D, Acc> out;
  std::memcpy(static_cast<void*>(&out), static_cast<const void*>(&a), sizeof a);
  return out;
}

}  // namespace herd::kernels::detail
