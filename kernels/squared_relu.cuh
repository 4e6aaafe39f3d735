// Squared ReLU (Primer's FFN activation), elementwise, computed in Acc (float for bf16):
//   y = relu(x)^2,  dx = 2 relu(x) dy
// The reference relu(x).square() makes two passes forward and three backward; fused, each
// direction is one pass over memory.
#pragma once

#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

template <typename Acc, typename T>
HERD_HD inline T squared_relu_fwd(T x) {
  const Acc v = static_cast<Acc>(x);
  return static_cast<T>(v > Acc(0) ? v * v : Acc(0));
}

template <typename Acc, typename T>
HERD_HD inline T squared_relu_bwd(T x, T dy) {
  const Acc v = static_cast<Acc>(x);
  return static_cast<T>(v > Acc(0) ? Acc(2) * v * static_cast<Acc>(dy) : Acc(0));
}

// CUDA launchers (kernels/squared_relu.cu) over n contiguous elements; T = float or double,
// or uint16_t holding bfloat16 bits. Return a cudaError_t as int.
template <typename T>
int squared_relu_forward_cuda(const T* x, T* y, int64_t n, void* stream);
template <typename T>
int squared_relu_backward_cuda(const T* x, const T* dy, T* dx, int64_t n, void* stream);

}  // namespace herd::kernels
