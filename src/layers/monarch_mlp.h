// M2-BERT dimension mixer: a GLU MLP whose two linears are block-diagonal (BlockdiagLinear),
// with residual and post-LayerNorm, as in m2's BertGatedLinearUnitMLP (use_monarch_mlp):
//   h = BD(x; gated_layers) (D -> 2I, no bias); a = gelu_erf(h[:I]) * h[I:]
//   out = LayerNorm(BD(a; wo) + wo.bias + x)
#pragma once

#include <torch/torch.h>

#include "ops/blockdiag_linear.h"

namespace herd {

class MonarchGluMlpImpl : public torch::nn::Module {
 public:
  MonarchGluMlpImpl(int64_t d_model, int64_t d_intermediate, int64_t nblocks,
                    double layer_norm_eps = 1e-12);
  torch::Tensor forward(const torch::Tensor& x);  // [..., D] -> [..., D], residual included

  int64_t d_model, d_intermediate;
  BlockdiagLinear gated_layers{nullptr};  // weight (nb, 2I/nb, D/nb), no bias
  BlockdiagLinear wo{nullptr};            // weight (nb, D/nb, I/nb), bias (D)
  torch::nn::LayerNorm layernorm{nullptr};
};
TORCH_MODULE(MonarchGluMlp);

}  // namespace herd
