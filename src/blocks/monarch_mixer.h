// Monarch Mixer sequence mixer (Fu et al. 2023; m2 bert/src/mm/monarch_mixer_sequence_mixer.py:
// MonarchMixerSequenceMixing without the training additions):
//   x1, x2, v = split(shortconv(in_linear(u)), D)
//   y = conv_1(v * x1) * x2  [+ conv_2(u)  when residual_long_conv]
//   out = out_linear(y)
// conv_i is a long convolution with implicit filter filter_fn{,2} and skip filter_fn{,2}.bias;
// bidirectional adds a reverse (anti-causal) kernel from implicit_filter_rev (see fft_conv.h).
// Parameter names equal the reference's, so the reference name map is the identity.
#pragma once

#include "blocks/mixer.h"
#include "ops/implicit_filter.h"

namespace herd {

struct MonarchMixerOptions {
  int64_t d_model = 0;
  int64_t l_max = 0;
  bool bidirectional = false;
  int64_t filter_order = 16;  // hyena_filter_order (M2-BERT configs use 128)
  int64_t emb_dim = 3;        // hyena_emb_dim (M2-BERT configs use 5)
  double w = 10.0;            // hyena_w
  double w_mod = 1.0;         // hyena_w_mod
  bool residual_long_conv = false;
  int64_t short_filter_order = 3;
  int64_t num_inner_mlps = 2;
  bool modulate = true;
  // Optimizer groups as m2's hyena_utils tags them: "filter" = implicit_filter of filter_fn and
  // filter_fn2 (hyena_kernel_lr, hyena_wd; m2 leaves implicit_filter_rev untagged, so does
  // herd) and "pos_emb" = their z (hyena_lr_pos_emb, no weight decay). Defaults: the M2-BERT
  // pretraining yamls. m2 decays with composer's DecoupledAdamW (not scaled by lr), herd with
  // torch's AdamW (scaled by lr): equal numbers are not an equal decay.
  double filter_lr = 1e-3, filter_wd = 0.1, lr_pos_emb = 1e-5;
  std::set<std::string> set_options;  // which of the three the config set
};

// Causal M2 generation: the short-conv tail and the two long convolutions' input streams.
struct MonarchMixerCache : MixerCache {
  ShortConvStream short_conv;
  FilterStream conv, residual_conv;
};

class MonarchMixerImpl : public SequenceMixerImpl {
 public:
  explicit MonarchMixerImpl(const MonarchMixerOptions& o);
  torch::Tensor forward(const torch::Tensor& u) override;  // [B, L, D] -> [B, L, D]
  // Pads zeroed before both long convolutions (v x1 and the residual conv's input), so the
  // anti-causal taps of a bidirectional filter read zeros past the real tokens. The short conv
  // is causal and needs nothing.
  torch::Tensor forward_padded(const torch::Tensor& u, const torch::Tensor& pad) override;
  std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                             const torch::TensorOptions& options) override;
  torch::Tensor step(const torch::Tensor& u, MixerCache& cache) override;
  std::vector<ParamGroupTag> param_group_tags() const override;
  std::string context_parallel_refusal(int64_t parts, int64_t shard_length) const override;

  MonarchMixerOptions options;
  ops::ImplicitFilter filter_fn{nullptr}, filter_fn2{nullptr};  // filter_fn2: residual conv
  torch::nn::Linear in_linear{nullptr}, out_linear{nullptr};    // D -> 3D, D -> D
  torch::nn::Conv1d short_filter{nullptr};                      // depthwise, 3D channels

 private:
  // f applied to x pre, gated by post (either may be undefined).
  torch::Tensor long_conv(ops::ImplicitFilter& f, const torch::Tensor& x, const torch::Tensor& pre,
                          const torch::Tensor& post, int64_t L);
  // forward() with the long convolutions' inputs multiplied by keep [B, 1, L] when defined.
  torch::Tensor mix(const torch::Tensor& u, const torch::Tensor& keep);
};
TORCH_MODULE(MonarchMixer);

SequenceMixer make_m2(const MixerContext& ctx, cfg::ConfigMap& options);

}  // namespace herd
