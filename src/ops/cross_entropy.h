// Linear + softmax cross-entropy over a vocabulary, by chunks of rows, never holding the full
// [N, V] logits:
//   loss = mean over rows i with targets[i] != ignore_index of
//          -log softmax(x_i W^T + b)[targets[i]]
// For each chunk of rows: logits_c = x_c W^T + b (an ATen GEMM), then one fused pass per row
// (kernels/cross_entropy.cuh: max and argmax, log-sum-exp, loss and, when a gradient is
// wanted, softmax - onehot written over the logits), then dx_c = dlogits_c W and
// dW += dlogits_c^T x_c, db += sum dlogits_c. The gradients are thus computed in the forward
// (three GEMMs in all, as unchunked; recomputing the logits in backward would cost a fourth)
// and only scaled by the incoming gradient in backward: the forward holds dW ([V, D]) and dx
// ([N, D]) until then instead of the [N, V] logits and their softmax.
// Under autocast the GEMMs run in the autocast dtype and each chunk's logits are upcast to
// fp32 inside the row pass, as the reference upcasts the full logits.
// linear_cross_entropy() dispatches (ops/kernel_path.h): fused when supported, else the
// reference linear + cross_entropy.
#pragma once

#include <torch/torch.h>

#include "ops/kernel_path.h"

namespace herd::ops {

// x [N, D], weight [V, D], bias [V] or undefined, targets [N] int64 in [0, V) or
// ignore_index. Returns the mean loss (0-dim; float, or double for double inputs; NaN when
// every row is ignored, like torch). correct, when given, receives a 0-dim int64 tensor: the
// rows (not ignored) whose logits' argmax is their target.
torch::Tensor linear_cross_entropy(const torch::Tensor& x, const torch::Tensor& weight,
                                   const torch::Tensor& bias, const torch::Tensor& targets,
                                   int64_t ignore_index = -100, torch::Tensor* correct = nullptr);

// The fused path takes: x, weight (and bias) of one floating dtype (float, double, bfloat16)
// on one device (CPU, or CUDA when compiled), well-formed shapes, N >= 1, targets int64 [N]
// on that device; any dtype under autocast (the GEMMs then run in the autocast dtype).
Support linear_cross_entropy_supports(const torch::Tensor& x, const torch::Tensor& weight,
                                      const torch::Tensor& bias, const torch::Tensor& targets);
Support linear_cross_entropy_supports(const OpTarget& t);
KernelPath linear_cross_entropy_path(const torch::Tensor& x, const torch::Tensor& weight,
                                     const torch::Tensor& bias, const torch::Tensor& targets);

// Rows per chunk for V classes: about 64 MB of fp32 logits (333 rows at V = 50257), and at
// least 64 rows. Every chunk streams W through its two GEMMs and reads and writes dW once, so
// chunks of a few MB (~16 rows) would make the GEMMs memory-bound; measured on 2 cores at
// N = 2048, D = 768, V = 50257, fwd+bwd is flat within noise from 128 to 2048 rows per chunk.
int64_t cross_entropy_chunk_rows(int64_t N, int64_t V);

// Explicit paths for tests and benchmarks; _fused throws herd::Error when not supported, and
// takes a chunk size (0: cross_entropy_chunk_rows) so that tests cross chunk boundaries.
torch::Tensor linear_cross_entropy_reference(const torch::Tensor& x, const torch::Tensor& weight,
                                             const torch::Tensor& bias,
                                             const torch::Tensor& targets,
                                             int64_t ignore_index = -100,
                                             torch::Tensor* correct = nullptr);
torch::Tensor linear_cross_entropy_fused(const torch::Tensor& x, const torch::Tensor& weight,
                                         const torch::Tensor& bias, const torch::Tensor& targets,
                                         int64_t ignore_index = -100,
                                         torch::Tensor* correct = nullptr, int64_t chunk_rows = 0);

}  // namespace herd::ops
