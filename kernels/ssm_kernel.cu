// CUDA launchers for kernels/ssm_kernel.cuh. Forward: one block per (tile of kThreads
// positions, channel), one thread per position, the anchored coefficients Ct exp(l0 w) of a
// chunk of modes in shared memory. Backward: one block per (tile of kModesPerBlock modes,
// channel); each thread walks positions j, j + kThreads, ... keeping its sums in registers,
// then a fixed-order block reduction (deterministic, no atomics).
#include <cuda_runtime.h>

#include "kernels/ssm_kernel.cuh"

namespace herd::kernels {
namespace {

constexpr int kModesPerBlock = 8;

template <typename T>
__global__ void forward_kernel(const Cplx<T>* __restrict__ Ct, const Cplx<T>* __restrict__ w,
                               int64_t N2, int64_t L, T* __restrict__ K) {
  __shared__ Cplx<T> q[kThreads];
  const int64_t h = blockIdx.y, l0 = int64_t(blockIdx.x) * kThreads, j = threadIdx.x;
  const Cplx<T>* c = Ct + h * N2;
  const Cplx<T>* wh = w + h * N2;
  T acc = T(0);
  for (int64_t n0 = 0; n0 < N2; n0 += kThreads) {
    const int64_t chunk = N2 - n0 < kThreads ? N2 - n0 : kThreads;
    __syncthreads();  // the previous chunk has been read
    if (j < chunk) q[j] = cmul(c[n0 + j], ssm_power(wh[n0 + j], l0));
    __syncthreads();
    if (l0 + j < L)
      for (int64_t n = 0; n < chunk; ++n) acc += ssm_fwd_term(q[n], ssm_power(wh[n0 + n], j));
  }
  if (l0 + j < L) K[h * L + l0 + j] = T(2) * acc;
}

// Sum over the block in a fixed order; the result is valid in thread 0.
template <typename T>
__device__ T block_sum(T v) {
  __shared__ T partial[kThreads / 32];
  __syncthreads();  // a previous call's partials have been read
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? partial[lane] : T(0);
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  }
  return v;
}

template <typename T>
__global__ void backward_kernel(const Cplx<T>* __restrict__ Ct, const Cplx<T>* __restrict__ w,
                                const T* __restrict__ g, int64_t N2, int64_t L,
                                Cplx<T>* __restrict__ gCt, Cplx<T>* __restrict__ gw) {
  __shared__ Cplx<T> anchor[kModesPerBlock];
  const int64_t h = blockIdx.y, n0 = int64_t(blockIdx.x) * kModesPerBlock, j = threadIdx.x;
  const int64_t modes = N2 - n0 < kModesPerBlock ? N2 - n0 : kModesPerBlock;
  const Cplx<T>* wh = w + h * N2 + n0;
  // U = sum_t g[l] conj(exp(l0_t w)), V = sum_t l g[l] conj(exp(l0_t w)), l = l0_t + j, in
  // two levels (u, v over kSsmSumBlock tiles) as ssm_backward_lanes.
  Cplx<T> U[kModesPerBlock], V[kModesPerBlock], u[kModesPerBlock], v[kModesPerBlock];
#pragma unroll
  for (int m = 0; m < kModesPerBlock; ++m) U[m] = V[m] = u[m] = v[m] = Cplx<T>{T(0), T(0)};
  for (int64_t l0 = 0, t = 1; l0 < L; l0 += kThreads, ++t) {
    __syncthreads();  // the previous anchors have been read
    if (j < modes) anchor[j] = ssm_power(wh[j], l0);
    __syncthreads();
    if (l0 + j < L) {
      const T gv = g[h * L + l0 + j];
#pragma unroll
      for (int m = 0; m < kModesPerBlock; ++m)
        if (m < modes) ssm_bwd_term(gv, T(l0 + j) * gv, anchor[m], u[m], v[m]);
    }
    if (t % kSsmSumBlock == 0 || l0 + kThreads >= L) {
#pragma unroll
      for (int m = 0; m < kModesPerBlock; ++m) {
        U[m] = {U[m].re + u[m].re, U[m].im + u[m].im};
        V[m] = {V[m].re + v[m].re, V[m].im + v[m].im};
        u[m] = v[m] = Cplx<T>{T(0), T(0)};
      }
    }
  }
#pragma unroll
  for (int m = 0; m < kModesPerBlock; ++m) {
    if (m >= modes) break;  // uniform across the block
    // This thread's positions are l0_t + j: fold exp(j w) in, then reduce over threads.
    Cplx<T> gC{T(0), T(0)}, S{T(0), T(0)};
    ssm_bwd_anchor(ssm_power(wh[m], j), U[m], V[m], gC, S);
    gC.re = block_sum(gC.re);
    gC.im = block_sum(gC.im);
    S.re = block_sum(S.re);
    S.im = block_sum(S.im);
    if (j == 0) {
      const int64_t i = h * N2 + n0 + m;
      ssm_bwd_finish(Ct[i], gC, S, gCt ? gCt + i : nullptr, gw ? gw + i : nullptr);
    }
  }
}

}  // namespace

template <typename T>
int ssm_kernel_forward_cuda(const Cplx<T>* Ct, const Cplx<T>* w, int64_t H, int64_t N2, int64_t L,
                            T* K, void* stream) {
  if (H == 0 || L == 0) return 0;
  if (H > 65535 || (L + kThreads - 1) / kThreads > 0x7fffffff)
    return static_cast<int>(cudaErrorInvalidConfiguration);
  const dim3 grid(static_cast<unsigned>((L + kThreads - 1) / kThreads), static_cast<unsigned>(H));
  forward_kernel<T><<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(Ct, w, N2, L, K);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int ssm_kernel_backward_cuda(const Cplx<T>* Ct, const Cplx<T>* w, const T* g, int64_t H, int64_t N2,
                             int64_t L, Cplx<T>* gCt, Cplx<T>* gw, void* stream) {
  if (H == 0 || N2 == 0 || (!gCt && !gw)) return 0;
  if (H > 65535) return static_cast<int>(cudaErrorInvalidConfiguration);
  const dim3 grid(static_cast<unsigned>((N2 + kModesPerBlock - 1) / kModesPerBlock),
                  static_cast<unsigned>(H));
  backward_kernel<T>
      <<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(Ct, w, g, N2, L, gCt, gw);
  return static_cast<int>(cudaGetLastError());
}

template int ssm_kernel_forward_cuda<float>(const Cplx<float>*, const Cplx<float>*, int64_t,
                                            int64_t, int64_t, float*, void*);
template int ssm_kernel_forward_cuda<double>(const Cplx<double>*, const Cplx<double>*, int64_t,
                                             int64_t, int64_t, double*, void*);
template int ssm_kernel_backward_cuda<float>(const Cplx<float>*, const Cplx<float>*, const float*,
                                             int64_t, int64_t, int64_t, Cplx<float>*, Cplx<float>*,
                                             void*);
template int ssm_kernel_backward_cuda<double>(const Cplx<double>*, const Cplx<double>*,
                                              const double*, int64_t, int64_t, int64_t,
                                              Cplx<double>*, Cplx<double>*, void*);

}  // namespace herd::kernels
