// Device halves of the fused linear_cross_entropy (ops/cross_entropy.h): the per-row pass over
// one chunk of logits, called with checked inputs.
#pragma once

#include <torch/torch.h>

namespace herd::ops::detail {

// z: contiguous [R, V] logits of one chunk (float, double or bfloat16), overwritten by dz when
// grad; targets: [R] int64 on z's device. Returns {row losses [R] (0 where ignored), argmax
// [R] int64 (only when want_argmax)}; the losses are double for double logits, else float.
std::pair<torch::Tensor, torch::Tensor> cross_entropy_rows_cpu(torch::Tensor& z,
                                                               const torch::Tensor& targets,
                                                               int64_t ignore_index, double scale,
                                                               bool grad, bool want_argmax);
#ifdef HERD_HAVE_CUDA_KERNELS
std::pair<torch::Tensor, torch::Tensor> cross_entropy_rows_cuda(torch::Tensor& z,
                                                                const torch::Tensor& targets,
                                                                int64_t ignore_index, double scale,
                                                                bool grad, bool want_argmax);
#endif

}  // namespace herd::ops::detail
