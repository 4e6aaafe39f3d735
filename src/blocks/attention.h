// Multi-head softmax attention, parameter layout of torch.nn.MultiheadAttention:
// in_proj_weight (3D, D) with rows q;k;v, in_proj_bias (3D), out_proj (D -> D).
#pragma once

#include "blocks/mixer.h"

namespace herd {

// Keys and values of the positions so far, [B, H, max_len, d_head].
struct KvCache : MixerCache {
  torch::Tensor k, v;
};

class AttentionImpl : public SequenceMixerImpl {
 public:
  AttentionImpl(int64_t d_model, int64_t n_head, bool causal, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x) override;  // [B, L, D] -> [B, L, D]
  // Pads are masked out as keys (torch MHA's key_padding_mask).
  torch::Tensor forward_padded(const torch::Tensor& x, const torch::Tensor& pad) override;
  // Attention core on projected q, k, v, each [B, L, D] (head-major channels); used by
  // variants (Primer) that transform q, k, v between projection and attention.
  // pad [B, L] (optional): true at padding positions, which no query attends to.
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& pad = {});
  torch::Tensor project_qkv(const torch::Tensor& x);  // [B, L, 3D]
  // attend() on a shard of the positions (context parallel, blocks/sequence_split.h): heads
  // split by all-to-all when n_head divides among the shards, else keys and values gathered.
  torch::Tensor attend_shard(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& pad);
  std::string context_parallel_refusal(int64_t, int64_t) const override { return ""; }
  // Causal generation: a KV cache; step() attends the new positions to every cached one.
  std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                             const torch::TensorOptions& options) override;
  torch::Tensor step(const torch::Tensor& x, MixerCache& cache) override;
  // attend() for T new positions: appends k, v to the cache, masks causally within them.
  torch::Tensor attend_cached(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, KvCache& cache);

  int64_t d_model, n_head;
  bool causal;
  double dropout = 0.0;  // on the attention probabilities, in training only (option `dropout`)
  torch::Tensor in_proj_weight;  // (3D, D)
  torch::Tensor in_proj_bias;    // (3D) or undefined
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(Attention);

// The `dropout` option of attention and Primer: a probability in [0, 1).
double read_attention_dropout(cfg::ConfigMap& options);

}  // namespace herd
