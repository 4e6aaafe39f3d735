// Primer multi-dconv-head attention (So et al. 2021): nn.MultiheadAttention's projections,
// then a causal depthwise conv along the sequence on each of q, k, v (one K-tap filter per
// channel c = head*d_head + j, no bias, tap K-1 = current step), then softmax attention. In
// bidirectional stacks the conv is centred (tap (K-1)/2 = current step, docs/blocks.md).
// Parameters: in_proj_weight (3D, D), in_proj_bias (3D), {q,k,v}_dconv.weight (D, 1, K),
// out_proj (D -> D).
#pragma once

#include "blocks/attention.h"

namespace herd {

// The KV cache plus the last K-1 projected q, k, v rows the depthwise convolutions read.
struct PrimerCache : KvCache {
  ShortConvStream dconv;
};

class PrimerMDHAImpl : public AttentionImpl {
 public:
  PrimerMDHAImpl(int64_t d_model, int64_t n_head, int64_t dconv_width = 3, bool causal = true,
                 bool bias = true);
  torch::Tensor forward(const torch::Tensor& x) override;  // [B, L, D] -> [B, L, D]
  std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                             const torch::TensorOptions& options) override;
  torch::Tensor step(const torch::Tensor& x, MixerCache& cache) override;
  std::string context_parallel_refusal(int64_t parts, int64_t shard_length) const override;
  torch::Tensor dconv_weight() const;  // (3D, 1, K): q; k; v filters, as the packed projection
  // The depthwise convs on the packed [B, 3D, L] projection: causal, or centred when !causal.
  torch::Tensor dconv(const torch::Tensor& qkv);
  // Pads: their projections are zeroed before the (centred) dconv, as if the sequence ended
  // there, and masked as keys.
  torch::Tensor forward_padded(const torch::Tensor& x, const torch::Tensor& pad) override;

  int64_t dconv_width;
  torch::nn::Conv1d q_dconv{nullptr}, k_dconv{nullptr}, v_dconv{nullptr};  // weight (D, 1, K)
};
TORCH_MODULE(PrimerMDHA);

}  // namespace herd
