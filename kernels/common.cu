// Error text for the int status codes that kernels/*.cu launchers return.
#include <cuda_runtime.h>

#include "kernels/common.cuh"

namespace herd::kernels {

const char* cuda_error_string(int err) {
  if (err >= kCufftErrorBase) return "cuFFT call failed (cufftResult = code - 10000)";
  return cudaGetErrorString(static_cast<cudaError_t>(err));
}

}  // namespace herd::kernels
