// Bias + squared ReLU (Primer's FFN activation after fc1), elementwise, computed in Acc
// (float for bf16):
//   u = x + b,  y = relu(u)^2,  dx = 2 relu(u) dy,  dbias = sum over rows of dx
// x is [rows, F] (the fc1 matmul without its bias), b is [F] or absent (b = 0). The reference
// relu(x + b).square() makes three passes forward and four backward; fused, each direction is
// one pass over memory, the dbias reduction included.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

// relu(u) as (u + |u|) / 2: exact (NaN stays NaN) and branch-free, so that CPU loops
// vectorize (a floating-point select would not, under default floating-point semantics).
template <typename Acc>
HERD_HD inline Acc relu_exact(Acc u) {
#if defined(__CUDA_ARCH__)
  return (u + fabs(u)) * Acc(0.5);
#else
  return (u + std::fabs(u)) * Acc(0.5);
#endif
}

template <typename Acc, typename T>
HERD_HD inline Acc squared_relu_value(T x, Acc bias) {
  const Acc r = relu_exact(static_cast<Acc>(x) + bias);
  return r * r;
}

// d y / d x times dy; the same value is dbias's term.
template <typename Acc, typename T>
HERD_HD inline Acc squared_relu_grad(T x, Acc bias, T dy) {
  return Acc(2) * relu_exact(static_cast<Acc>(x) + bias) * static_cast<Acc>(dy);
}

// dbias is summed in this many fixed row blocks (each in row order), then over the blocks in
// order: the same sums whatever the thread count or schedule.
constexpr int64_t kSquaredReluBiasBlocks = 64;

// Rows of block `blk` of `rows`: [begin, end).
HERD_HD inline int64_t squared_relu_block_begin(int64_t rows, int64_t blocks, int64_t blk) {
  return rows * blk / blocks;
}

// CUDA launchers (kernels/squared_relu.cu) over contiguous [rows, F] tensors; T = float or
// double, or uint16_t holding bfloat16 bits; bias/dbias may be null (then F only shapes the
// loop). dbias_partial: kSquaredReluBiasBlocks * F accumulators of T's Acc type (float for
// bfloat16), scratch owned by the caller. Return a cudaError_t as int.
template <typename T>
int squared_relu_forward_cuda(const T* x, const T* bias, T* y, int64_t rows, int64_t F,
                              void* stream);
template <typename T>
int squared_relu_backward_cuda(const T* x, const T* bias, const T* dy, T* dx, T* dbias,
                               void* dbias_partial, int64_t rows, int64_t F, void* stream);

}  // namespace herd::kernels
