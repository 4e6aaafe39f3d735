// Shared by every kernels/<op>.cuh: the math is plain C++ that nvcc compiles for the device
// and g++ compiles for herd's CPU fast path, so both paths run the very same functions.
#pragma once

#if defined(__CUDACC__)
#define HERD_HD __host__ __device__
#else
#define HERD_HD
#endif

namespace herd::kernels {

// Launchers return a cudaError_t as int so that callers need no CUDA headers; 0 is success.
// Defined in kernels/common.cu (only linked when nvcc built herd_kernels).
const char* cuda_error_string(int err);

}  // namespace herd::kernels
