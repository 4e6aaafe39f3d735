// Block-wide reductions for the CUDA launchers of kernels/*.cu (device code only): a sum and
// a (max, first index) over the threads of a block of kThreads, the same order on every run
// (warp shuffles, then the warps' results in order), the result given to every thread.
#pragma once

#if defined(__CUDACC__)

#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

template <typename T>
__device__ T block_sum_all(T v) {
  __shared__ T partial[kThreads / 32];
  __shared__ T total;
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    T s = T(0);
    for (int w = 0; w < int(blockDim.x / 32); ++w) s += partial[w];
    total = s;
  }
  __syncthreads();
  const T out = total;
  __syncthreads();  // the shared slots may be reused by the next call
  return out;
}

// The largest v over the block and the lowest index holding it.
template <typename T>
__device__ void block_max_index_all(T& v, int64_t& index) {
  __shared__ T values[kThreads / 32];
  __shared__ int64_t indices[kThreads / 32];
  for (int off = 16; off > 0; off /= 2) {
    const T ov = __shfl_down_sync(0xffffffffu, v, off);
    const int64_t oi = __shfl_down_sync(0xffffffffu, index, off);
    if (ov > v || (ov == v && oi < index)) {
      v = ov;
      index = oi;
    }
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    values[warp] = v;
    indices[warp] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w)
      if (values[w] > values[0] || (values[w] == values[0] && indices[w] < indices[0])) {
        values[0] = values[w];
        indices[0] = indices[w];
      }
  }
  __syncthreads();
  v = values[0];
  index = indices[0];
  __syncthreads();
}

}  // namespace herd::kernels

#endif  // __CUDACC__
