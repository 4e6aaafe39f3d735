// Device halves of the fused add_layer_norm (ops/add_layer_norm.h), called with checked
// inputs: h, delta contiguous [rows, D] (delta undefined: none), weight/bias contiguous [D];
// mean/rstd [rows] in the accumulation dtype (float, or double for double).
#pragma once

#include <torch/torch.h>

#include <array>

namespace herd::ops::detail {

struct AddNormForward {
  torch::Tensor sum;  // undefined without a delta (the sum is h)
  torch::Tensor normed, mean, rstd;
};
struct AddNormGrads {
  torch::Tensor ds, dweight, dbias;  // undefined where not wanted
};

// The accumulation dtype of a storage dtype: double for double, else float.
inline torch::ScalarType acc_dtype(torch::ScalarType t) {
  return t == torch::kDouble ? torch::kDouble : torch::kFloat;
}

AddNormForward add_layer_norm_forward_cpu(const torch::Tensor& h, const torch::Tensor& delta,
                                          const torch::Tensor& weight, const torch::Tensor& bias,
                                          double eps);
// s: the normalized sum; dy contiguous; ds_in contiguous or undefined.
AddNormGrads add_layer_norm_backward_cpu(const torch::Tensor& s, const torch::Tensor& weight,
                                         const torch::Tensor& mean, const torch::Tensor& rstd,
                                         const torch::Tensor& dy, const torch::Tensor& ds_in,
                                         bool need_ds, bool need_dweight, bool need_dbias);

#ifdef HERD_HAVE_CUDA_KERNELS
AddNormForward add_layer_norm_forward_cuda(const torch::Tensor& h, const torch::Tensor& delta,
                                           const torch::Tensor& weight, const torch::Tensor& bias,
                                           double eps);
AddNormGrads add_layer_norm_backward_cuda(const torch::Tensor& s, const torch::Tensor& weight,
                                          const torch::Tensor& mean, const torch::Tensor& rstd,
                                          const torch::Tensor& dy, const torch::Tensor& ds_in,
                                          bool need_ds, bool need_dweight, bool need_dbias);
#endif

}  // namespace herd::ops::detail
