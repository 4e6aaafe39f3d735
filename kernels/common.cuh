// Shared by every kernels/<op>.cuh: the math is plain C++ that nvcc compiles for the device
// and g++ compiles for herd's CPU fast path, so both paths run the very same functions.
#pragma once

#if defined(__CUDACC__)
#define HERD_HD __host__ __device__
#else
#define HERD_HD
#endif
// Lambdas in shared pipelines are written `[=] HERD_HD(int64_t i) { ... }` (nvcc's
// --extended-lambda makes them device lambdas; g++ sees plain ones).

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace herd::kernels {

// Threads per block of every launcher (a multiple of the warp size, for shared reductions).
constexpr int kThreads = 256;

// Blocks for n elements under grid-stride loops; more than 2^16 only add scheduling overhead.
inline unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 1 << 16));
}

// A float's bit pattern as int32 and back (device intrinsics, memcpy on the host).
HERD_HD inline int32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(x);
#else
  int32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
#endif
}
HERD_HD inline float bits_float(int32_t b) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(b);
#else
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
#endif
}

// Launchers return a cudaError_t as int so that callers need no CUDA headers; 0 is success.
// cuFFT failures come back as kCufftErrorBase + their cufftResult.
constexpr int kCufftErrorBase = 10000;
// Defined in kernels/common.cu (only linked when nvcc built herd_kernels).
const char* cuda_error_string(int err);

}  // namespace herd::kernels
