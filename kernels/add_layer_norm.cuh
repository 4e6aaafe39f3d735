// Residual add + LayerNorm over the last dimension (D), per row, computed in Acc (float for
// float/bfloat16 storage):
//   s = h + delta          (stored; delta may be absent, then s = h)
//   mean = sum(s) / D,  var = sum((s - mean)^2) / D,  rstd = 1 / sqrt(var + eps)
//   y = (s - mean) * rstd * gamma + beta
// Backward, from dy and ds_in (what reaches s from the residual stream; may be absent):
//   xhat = (s - mean) * rstd,  g = dy * gamma
//   ds = rstd * (g - mean(g) - xhat * mean(g * xhat)) + ds_in      (= dh = ddelta)
//   dgamma = sum over rows of dy * xhat,  dbeta = sum over rows of dy
// dgamma/dbeta are summed in kAddLayerNormParamBlocks fixed row blocks (each in row order),
// then over the blocks in order: the same sums whatever the thread count or schedule.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.cuh"

namespace herd::kernels {

constexpr int64_t kAddLayerNormParamBlocks = 64;

// Rows of block `blk` of `rows` split in `blocks`: [begin(blk), begin(blk + 1)).
HERD_HD inline int64_t add_layer_norm_block_begin(int64_t rows, int64_t blocks, int64_t blk) {
  return rows * blk / blocks;
}

// rstd from the sum of squared deviations of a row of D.
template <typename Acc>
HERD_HD inline Acc layer_norm_rstd(Acc sq_dev, int64_t D, double eps) {
  const Acc var = sq_dev / static_cast<Acc>(D) + static_cast<Acc>(eps);
#if defined(__CUDA_ARCH__)
  return Acc(1) / sqrt(var);
#else
  return Acc(1) / std::sqrt(var);
#endif
}

template <typename Acc>
HERD_HD inline Acc layer_norm_value(Acc s, Acc mean, Acc rstd, Acc gamma, Acc beta) {
  return (s - mean) * rstd * gamma + beta;
}

// ds of one element; mean_g = mean(g), mean_gx = mean(g * xhat) over the row.
template <typename Acc>
HERD_HD inline Acc layer_norm_input_grad(Acc g, Acc xhat, Acc mean_g, Acc mean_gx, Acc rstd,
                                         Acc ds_in) {
  return rstd * (g - mean_g - xhat * mean_gx) + ds_in;
}

// CUDA launchers (kernels/add_layer_norm.cu) over contiguous [rows, D] tensors. T = float,
// double or uint16_t (bfloat16 bits) for h, s, y, gamma, beta, dy, ds; TD the same as T or
// (T = float) bfloat16 bits for delta (autocast: an fp32 residual plus a bf16 branch).
// delta, ds_in may be null; mean/rstd (and the partials) are in T's Acc type (float or
// double). Return a cudaError_t as int.
template <typename T, typename TD>
int add_layer_norm_forward_cuda(const T* h, const TD* delta, const T* gamma, const T* beta,
                                double eps, T* s, T* y, void* mean, void* rstd, int64_t rows,
                                int64_t D, void* stream);
// ds, dgamma, dbeta may be null (not wanted); partial: 2 * kAddLayerNormParamBlocks * D
// accumulators of the Acc type, scratch owned by the caller (needed for dgamma/dbeta).
template <typename T>
int add_layer_norm_backward_cuda(const T* s, const T* gamma, const void* mean, const void* rstd,
                                 const T* dy, const T* ds_in, T* ds, T* dgamma, T* dbeta,
                                 void* partial, int64_t rows, int64_t D, void* stream);

}  // namespace herd::kernels
