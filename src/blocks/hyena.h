// Hyena operator (Poli et al. 2023; safari src/models/sequence/hyena.py:HyenaOperator with
// num_heads = inner_factor = num_blocks = 1). With N = order:
//   x0, .., x_{N-1}, v = split(shortconv(in_proj(u)), D)
//   for o in 0..N-2:  v = longconv(v * x_{N-1-o}; h[:, d*(N-1)+o], Dskip = filter_fn.bias[..])
//   y = out_proj(v * x0)
// Causal only. Parameter names equal the reference's (in_proj, out_proj, short_filter,
// filter_fn.*), so the reference name map is the identity.
#pragma once

#include "blocks/mixer.h"
#include "ops/implicit_filter.h"

namespace herd {

struct HyenaOptions {
  int64_t d_model = 0;
  int64_t l_max = 0;
  int64_t order = 2;          // depth of the recurrence, >= 2
  int64_t filter_order = 64;  // implicit-filter MLP width
  int64_t emb_dim = 3;        // positional features (odd, >= 3)
  double w = 1.0;             // Sin frequency init
  int64_t short_filter_order = 3;
  int64_t num_inner_mlps = 2;
  bool modulate = true;
  // Dropout on each gated product v * x_i before its long convolution (safari's `dropout`;
  // its `filter_dropout` is never applied by the reference, so herd has none).
  double dropout = 0.0;
  // Optimizer groups as safari's HyenaFilter registers them: "filter" (the implicit-filter MLP,
  // its Sin frequencies included) and "pos_emb" (the positional features z, no weight decay).
  double filter_lr = 1e-3, filter_wd = 0.0, lr_pos_emb = 1e-5;
  std::set<std::string> set_options;  // which of the three the config set
};

// The short-conv tail and one input stream per recurrence step (filters generated once).
struct HyenaCache : MixerCache {
  ShortConvStream short_conv;
  std::vector<FilterStream> steps;  // order - 1
};

class HyenaImpl : public SequenceMixerImpl {
 public:
  explicit HyenaImpl(const HyenaOptions& o);
  torch::Tensor forward(const torch::Tensor& u) override;  // [B, L, D] -> [B, L, D]
  std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                             const torch::TensorOptions& options) override;
  torch::Tensor step(const torch::Tensor& u, MixerCache& cache) override;
  std::vector<ParamGroupTag> param_group_tags() const override;
  std::string context_parallel_refusal(int64_t parts, int64_t shard_length) const override;

  HyenaOptions options;
  torch::nn::Linear in_proj{nullptr}, out_proj{nullptr};  // D -> (N+1)D, D -> D
  torch::nn::Conv1d short_filter{nullptr};                // depthwise, (N+1)D channels
  ops::ImplicitFilter filter_fn{nullptr};                 // (N-1)D channels, (d, o) interleaved
};
TORCH_MODULE(Hyena);

SequenceMixer make_hyena(const MixerContext& ctx, cfg::ConfigMap& options);

}  // namespace herd
