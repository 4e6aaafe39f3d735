// Primer multi-dconv-head attention (So et al. 2021): nn.MultiheadAttention's projections,
// then a causal depthwise conv along the sequence on each of q, k, v (one K-tap filter per
// channel c = head*d_head + j, no bias, tap K-1 = current step), then softmax attention.
// Parameters: in_proj_weight (3D, D), in_proj_bias (3D), {q,k,v}_dconv.weight (D, 1, K),
// out_proj (D -> D).
#pragma once

#include "blocks/attention.h"

namespace herd {

class PrimerMDHAImpl : public AttentionImpl {
 public:
  PrimerMDHAImpl(int64_t d_model, int64_t n_head, int64_t dconv_width = 3, bool causal = true,
                 bool bias = true);
  torch::Tensor forward(const torch::Tensor& x) override;  // [B, L, D] -> [B, L, D]

  int64_t dconv_width;
  torch::nn::Conv1d q_dconv{nullptr}, k_dconv{nullptr}, v_dconv{nullptr};  // weight (D, 1, K)
};
TORCH_MODULE(PrimerMDHA);

}  // namespace herd
