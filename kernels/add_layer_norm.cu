// CUDA launchers for kernels/add_layer_norm.cuh: one block per row for the forward and for ds
// (block reductions of the row sums); dgamma/dbeta from kAddLayerNormParamBlocks fixed row
// blocks (one thread per (block, column)) summed in block order by a second kernel, so the
// sums do not depend on scheduling (no atomics).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/add_layer_norm.cuh"
#include "kernels/block_reduce.cuh"
#include "kernels/device_type.cuh"

namespace herd::kernels {
namespace {

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T, typename TD>
__global__ void forward_kernel(const T* __restrict__ h, const TD* __restrict__ delta,
                               const T* __restrict__ gamma, const T* __restrict__ beta, double eps,
                               T* __restrict__ s_out, T* __restrict__ y, Acc<T>* __restrict__ mean,
                               Acc<T>* __restrict__ rstd, int64_t D) {
  using A = Acc<T>;
  const int64_t r = blockIdx.x;
  const T* hr = h + r * D;
  const T* s = hr;
  A sum = A(0);
  if (delta) {
    const TD* dr = delta + r * D;
    T* sr = s_out + r * D;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
      const T v = static_cast<T>(static_cast<A>(hr[j]) + static_cast<A>(dr[j]));
      sr[j] = v;
      sum += static_cast<A>(v);
    }
    s = sr;  // each thread re-reads only what it wrote
  } else {
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) sum += static_cast<A>(hr[j]);
  }
  const A mu = block_sum_all(sum) / static_cast<A>(D);
  A sq = A(0);
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    const A d = static_cast<A>(s[j]) - mu;
    sq += d * d;
  }
  const A rs = layer_norm_rstd<A>(block_sum_all(sq), D, eps);
  T* yr = y + r * D;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
    yr[j] = static_cast<T>(layer_norm_value<A>(static_cast<A>(s[j]), mu, rs,
                                               static_cast<A>(gamma[j]), static_cast<A>(beta[j])));
  if (threadIdx.x == 0) {
    mean[r] = mu;
    rstd[r] = rs;
  }
}

template <typename T>
__global__ void ds_kernel(const T* __restrict__ s, const T* __restrict__ gamma,
                          const Acc<T>* __restrict__ mean, const Acc<T>* __restrict__ rstd,
                          const T* __restrict__ dy, const T* __restrict__ ds_in, T* __restrict__ ds,
                          int64_t D) {
  using A = Acc<T>;
  const int64_t r = blockIdx.x;
  const T *sr = s + r * D, *gr = dy + r * D;
  const A m = mean[r], rs = rstd[r];
  A sg = A(0), sgx = A(0);
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    const A g = static_cast<A>(gr[j]) * static_cast<A>(gamma[j]);
    sg += g;
    sgx += g * ((static_cast<A>(sr[j]) - m) * rs);
  }
  const A mean_g = block_sum_all(sg) / static_cast<A>(D);
  const A mean_gx = block_sum_all(sgx) / static_cast<A>(D);
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    const A g = static_cast<A>(gr[j]) * static_cast<A>(gamma[j]);
    const A xhat = (static_cast<A>(sr[j]) - m) * rs;
    ds[r * D + j] = static_cast<T>(layer_norm_input_grad<A>(
        g, xhat, mean_g, mean_gx, rs, ds_in ? static_cast<A>(ds_in[r * D + j]) : A(0)));
  }
}

// Thread (blk, j): the dgamma and dbeta terms of column j over the rows of block blk.
template <typename T>
__global__ void param_partial_kernel(const T* __restrict__ s, const Acc<T>* __restrict__ mean,
                                     const Acc<T>* __restrict__ rstd, const T* __restrict__ dy,
                                     Acc<T>* __restrict__ partial, int64_t rows, int64_t D,
                                     int64_t blocks) {
  using A = Acc<T>;
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, blk = blockIdx.y;
  if (j >= D) return;
  A pw = A(0), pb = A(0);
  const int64_t end = add_layer_norm_block_begin(rows, blocks, blk + 1);
  for (int64_t r = add_layer_norm_block_begin(rows, blocks, blk); r < end; ++r) {
    const A g = static_cast<A>(dy[r * D + j]);
    pw += g * ((static_cast<A>(s[r * D + j]) - mean[r]) * rstd[r]);
    pb += g;
  }
  partial[(2 * blk) * D + j] = pw;
  partial[(2 * blk + 1) * D + j] = pb;
}

template <typename T>
__global__ void param_sum_kernel(const Acc<T>* __restrict__ partial, T* __restrict__ dgamma,
                                 T* __restrict__ dbeta, int64_t D, int64_t blocks) {
  using A = Acc<T>;
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= D) return;
  A sw = A(0), sb = A(0);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    sw += partial[(2 * blk) * D + j];
    sb += partial[(2 * blk + 1) * D + j];
  }
  if (dgamma) dgamma[j] = static_cast<T>(sw);
  if (dbeta) dbeta[j] = static_cast<T>(sb);
}

unsigned column_blocks(int64_t D) {
  return static_cast<unsigned>((D + kThreads - 1) / kThreads);
}

}  // namespace

template <typename T, typename TD>
int add_layer_norm_forward_cuda(const T* h, const TD* delta, const T* gamma, const T* beta,
                                double eps, T* s, T* y, void* mean, void* rstd, int64_t rows,
                                int64_t D, void* stream) {
  using DT = DeviceType<T>;
  using DD = DeviceType<TD>;
  if (rows == 0 || D == 0) return 0;
  forward_kernel<DT, DD>
      <<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
          reinterpret_cast<const DT*>(h), reinterpret_cast<const DD*>(delta),
          reinterpret_cast<const DT*>(gamma), reinterpret_cast<const DT*>(beta), eps,
          reinterpret_cast<DT*>(s), reinterpret_cast<DT*>(y), static_cast<Acc<DT>*>(mean),
          static_cast<Acc<DT>*>(rstd), D);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int add_layer_norm_backward_cuda(const T* s, const T* gamma, const void* mean, const void* rstd,
                                 const T* dy, const T* ds_in, T* ds, T* dgamma, T* dbeta,
                                 void* partial, int64_t rows, int64_t D, void* stream) {
  using DT = DeviceType<T>;
  using A = Acc<DT>;
  if (rows == 0 || D == 0) return 0;
  auto st = static_cast<cudaStream_t>(stream);
  auto sd = reinterpret_cast<const DT*>(s);
  auto gd = reinterpret_cast<const DT*>(dy);
  auto md = static_cast<const A*>(mean);
  auto rd = static_cast<const A*>(rstd);
  if (ds)
    ds_kernel<DT><<<static_cast<unsigned>(rows), kThreads, 0, st>>>(
        sd, reinterpret_cast<const DT*>(gamma), md, rd, gd, reinterpret_cast<const DT*>(ds_in),
        reinterpret_cast<DT*>(ds), D);
  if (dgamma || dbeta) {
    const int64_t blocks = std::min(rows, kAddLayerNormParamBlocks);
    auto pd = static_cast<A*>(partial);
    param_partial_kernel<DT>
        <<<dim3(column_blocks(D), static_cast<unsigned>(blocks)), kThreads, 0, st>>>(
            sd, md, rd, gd, pd, rows, D, blocks);
    param_sum_kernel<DT><<<column_blocks(D), kThreads, 0, st>>>(
        pd, reinterpret_cast<DT*>(dgamma), reinterpret_cast<DT*>(dbeta), D, blocks);
  }
  return static_cast<int>(cudaGetLastError());
}

template int add_layer_norm_forward_cuda<float, float>(const float*, const float*, const float*,
                                                       const float*, double, float*, float*, void*,
                                                       void*, int64_t, int64_t, void*);
template int add_layer_norm_forward_cuda<float, uint16_t>(const float*, const uint16_t*,
                                                          const float*, const float*, double,
                                                          float*, float*, void*, void*, int64_t,
                                                          int64_t, void*);
template int add_layer_norm_forward_cuda<double, double>(const double*, const double*,
                                                         const double*, const double*, double,
                                                         double*, double*, void*, void*, int64_t,
                                                         int64_t, void*);
template int add_layer_norm_forward_cuda<uint16_t, uint16_t>(const uint16_t*, const uint16_t*,
                                                             const uint16_t*, const uint16_t*,
                                                             double, uint16_t*, uint16_t*, void*,
                                                             void*, int64_t, int64_t, void*);
template int add_layer_norm_backward_cuda<float>(const float*, const float*, const void*,
                                                 const void*, const float*, const float*, float*,
                                                 float*, float*, void*, int64_t, int64_t, void*);
template int add_layer_norm_backward_cuda<double>(const double*, const double*, const void*,
                                                  const void*, const double*, const double*,
                                                  double*, double*, double*, void*, int64_t,
                                                  int64_t, void*);
template int add_layer_norm_backward_cuda<uint16_t>(const uint16_t*, const uint16_t*, const void*,
                                                    const void*, const uint16_t*, const uint16_t*,
                                                    uint16_t*, uint16_t*, uint16_t*, void*, int64_t,
                                                    int64_t, void*);

}  // namespace herd::kernels
