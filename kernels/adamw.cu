// CUDA launcher for kernels/adamw.cuh: a grid-stride loop of adamw_point per parameter.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/adamw.cuh"

namespace herd::kernels {
namespace {

template <typename T>
__global__ void step_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, int64_t n, AdamWScalars<T> s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    T pi = p[i], mi = m[i], vi = v[i];
    adamw_point(pi, g[i], mi, vi, s);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace

template <typename T>
int adamw_step_cuda(T* p, const T* g, T* m, T* v, int64_t n, AdamWScalars<T> s, void* stream) {
  if (n == 0) return 0;
  step_kernel<T><<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p, g, m, v, n, s);
  return static_cast<int>(cudaGetLastError());
}

template int adamw_step_cuda<float>(float*, const float*, float*, float*, int64_t,
                                    AdamWScalars<float>, void*);
template int adamw_step_cuda<double>(double*, const double*, double*, double*, int64_t,
                                     AdamWScalars<double>, void*);

}  // namespace herd::kernels
