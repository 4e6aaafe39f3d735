// M2-BERT dimension mixer: a GLU MLP whose two linears are block-diagonal (BlockdiagLinear),
// with residual and post-LayerNorm, as in m2's BertGatedLinearUnitMLP (use_monarch_mlp):
//   h = BD(x; gated_layers) (D -> 2I, no bias); a = gelu_erf(h[:I]) * h[I:]
//   out = LayerNorm(BD(a; wo) + wo.bias + x)
// With residual_norm = false only the GLU remains (out = BD(a; wo) + wo.bias): the pre-norm
// GPT block adds its own residual and norms, so baking them in would apply them twice.
#pragma once

#include <torch/torch.h>

#include "ops/blockdiag_linear.h"

namespace herd {

class MonarchGluMlpImpl : public torch::nn::Module {
 public:
  MonarchGluMlpImpl(int64_t d_model, int64_t d_intermediate, int64_t nblocks,
                    double layer_norm_eps = 1e-12, bool residual_norm = true);
  // [..., D] -> [..., D]; residual and post-LN included when residual_norm
  torch::Tensor forward(const torch::Tensor& x);

  int64_t d_model, d_intermediate;
  double dropout = 0.0;  // on the gated activation before wo, in training (m2's hidden_dropout)
  BlockdiagLinear gated_layers{nullptr};    // weight (nb, 2I/nb, D/nb), no bias
  BlockdiagLinear wo{nullptr};              // weight (nb, D/nb, I/nb), bias (D)
  torch::nn::LayerNorm layernorm{nullptr};  // only when residual_norm
};
TORCH_MODULE(MonarchGluMlp);

}  // namespace herd
