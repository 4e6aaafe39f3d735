// CUDA launchers for kernels/squared_relu.cuh: grid-stride elementwise loops.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/squared_relu.cuh"

namespace herd::kernels {
namespace {

// bfloat16 travels as uint16_t through the torch-free interface; the kernels see the real type.
template <typename T>
struct Device {
  using type = T;
};
template <>
struct Device<uint16_t> {
  using type = __nv_bfloat16;
};
template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = squared_relu_fwd<Acc<T>>(x[i]);
}

template <typename T>
__global__ void backward_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                                T* __restrict__ dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = squared_relu_bwd<Acc<T>>(x[i], dy[i]);
}

}  // namespace

template <typename T>
int squared_relu_forward_cuda(const T* x, T* y, int64_t n, void* stream) {
  using D = typename Device<T>::type;
  if (n == 0) return 0;
  forward_kernel<D><<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const D*>(x), reinterpret_cast<D*>(y), n);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int squared_relu_backward_cuda(const T* x, const T* dy, T* dx, int64_t n, void* stream) {
  using D = typename Device<T>::type;
  if (n == 0) return 0;
  backward_kernel<D><<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const D*>(x), reinterpret_cast<const D*>(dy), reinterpret_cast<D*>(dx), n);
  return static_cast<int>(cudaGetLastError());
}

template int squared_relu_forward_cuda<float>(const float*, float*, int64_t, void*);
template int squared_relu_forward_cuda<double>(const double*, double*, int64_t, void*);
template int squared_relu_forward_cuda<uint16_t>(const uint16_t*, uint16_t*, int64_t, void*);
template int squared_relu_backward_cuda<float>(const float*, const float*, float*, int64_t, void*);
template int squared_relu_backward_cuda<double>(const double*, const double*, double*, int64_t,
                                                void*);
template int squared_relu_backward_cuda<uint16_t>(const uint16_t*, const uint16_t*, uint16_t*,
                                                  int64_t, void*);

}  // namespace herd::kernels
