// CUDA launchers for the long convolution's Monarch path: the block programs of
// kernels/monarch_conv.cuh with WMMA bfloat16 tensor-core tiles (sm_80+), one block of
// kMonarchWarps warps per row, the row in dynamic shared memory; the remaining steps (kernel
// spectrum, kernel gradients, dD) run on the executor of kernels/long_conv_exec.cuh.
#include <mma.h>

#include "kernels/long_conv_exec.cuh"
#include "kernels/monarch_conv.cuh"

namespace herd::kernels {
namespace {

namespace wmma = nvcuda::wmma;

struct WmmaCore {
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  __device__ int lane() const { return static_cast<int>(threadIdx.x % 32); }
  __device__ int lanes() const { return 32; }
  __device__ void sync_warp() const { __syncwarp(); }
  __device__ void zero(Acc& a) const { wmma::fill_fragment(a, 0.0f); }
  // Pointers are 32-byte aligned: every tile starts at a multiple of 16 elements of a row
  // whose length is a multiple of 16 (bases from cudaMalloc or the dynamic smem base).
  __device__ void load_a(FragA& f, const uint16_t* p, int64_t ld) const {
    wmma::load_matrix_sync(f, reinterpret_cast<const __nv_bfloat16*>(p), static_cast<unsigned>(ld));
  }
  __device__ void mma(Acc& acc, const FragA& a, const uint16_t* b, int64_t ld) const {
    FragB fb;
    wmma::load_matrix_sync(fb, reinterpret_cast<const __nv_bfloat16*>(b),
                           static_cast<unsigned>(ld));
    wmma::mma_sync(acc, a, fb, acc);
  }
  __device__ void store(const Acc& a, float* p) const {
    wmma::store_matrix_sync(p, a, 16, wmma::mem_row_major);
  }
};

struct WmmaBlock {
  template <typename F>
  __device__ void threads(F f) {
    f(static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
  }
  template <typename F>
  __device__ void warps_do(F f) {
    WmmaCore core;
    f(core, static_cast<int>(threadIdx.x / 32), static_cast<int>(blockDim.x / 32));
  }
  __device__ void sync() { __syncthreads(); }
};

template <typename Load, typename Spec, typename Out>
__global__ void __launch_bounds__(32 * kMonarchWarps)
    monarch_conv_kernel(MonarchTables tb, int64_t L, Load load, Spec spec, Out out) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int64_t r = blockIdx.x;
  WmmaBlock blk;
  monarch_conv_row(
      blk, tb, monarch_smem(smem, tb.N), L, [&](int64_t t) { return load(r, t); },
      [&](int64_t f) { return spec(r, f); }, [&](int64_t t, float z) { out(r, t, z); });
}

template <typename Load, typename Emit>
__global__ void __launch_bounds__(32 * kMonarchWarps)
    monarch_dft_kernel(MonarchTables tb, int64_t L, Load load, Emit emit) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int64_t r = blockIdx.x;
  WmmaBlock blk;
  monarch_dft_row(
      blk, tb, monarch_smem(smem, tb.N), L, [&](int64_t t) { return load(r, t); },
      [&](int64_t f, float re, float im) { emit(r, f, re, im); });
}

// Dynamic shared memory beyond 48 KiB must be asked for per kernel.
template <typename K, typename... Args>
int launch_rows(K kernel, int64_t rows, int64_t N, cudaStream_t stream, Args... args) {
  if (rows == 0) return 0;
  const int64_t bytes = monarch_smem_bytes(N, kMonarchWarps);
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(bytes)) != cudaSuccess)
    return static_cast<int>(cudaGetLastError());
  kernel<<<static_cast<unsigned>(rows), 32 * kMonarchWarps, static_cast<size_t>(bytes), stream>>>(
      args...);
  return static_cast<int>(cudaGetLastError());
}

struct MonarchExec : detail::CudaExec<float> {
  template <typename Load, typename Spec, typename Out>
  int monarch_conv_rows(const MonarchTables& tb, int64_t rows, int64_t L, Load load, Spec spec,
                        Out out) {
    return launch_rows(monarch_conv_kernel<Load, Spec, Out>, rows, tb.N, stream, tb, L, load, spec,
                       out);
  }
  template <typename Load, typename Emit>
  int monarch_dft_rows(const MonarchTables& tb, int64_t rows, int64_t L, Load load, Emit emit) {
    return launch_rows(monarch_dft_kernel<Load, Emit>, rows, tb.N, stream, tb, L, load, emit);
  }
};

}  // namespace

template <typename T>
int long_conv_monarch_forward_cuda(const LongConvCuda<T, float>& a, const MonarchTables& tb,
                                   void* stream) {
  MonarchExec ex{{static_cast<cudaStream_t>(stream)}};
  return long_conv_monarch_forward_steps(ex, detail::on_device(a), tb);
}

template <typename T>
int long_conv_monarch_backward_cuda(const LongConvCuda<T, float>& a, const MonarchTables& tb,
                                    void* stream) {
  MonarchExec ex{{static_cast<cudaStream_t>(stream)}};
  return long_conv_monarch_backward_steps(ex, detail::on_device(a), tb);
}

int64_t monarch_conv_max_fft() {
  int device = 0, major = 0, smem = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
          cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error of a failed query
    return 0;
  }
  if (major < 8) return 0;  // bfloat16 WMMA needs sm_80
  int64_t n = 0;
  for (int64_t N = kMonarchMinFft; N <= kMonarchMaxFft; N *= 2)
    if (monarch_smem_bytes(N, kMonarchWarps) <= smem) n = N;
  return n;
}

#define HERD_INSTANTIATE(T)                                                      \
  template int long_conv_monarch_forward_cuda<T>(const LongConvCuda<T, float>&,  \
                                                 const MonarchTables&, void*);   \
  template int long_conv_monarch_backward_cuda<T>(const LongConvCuda<T, float>&, \
                                                  const MonarchTables&, void*);
HERD_INSTANTIATE(float)
HERD_INSTANTIATE(uint16_t)

}  // namespace herd::kernels
