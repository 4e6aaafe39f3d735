// The Hyena implicit long filter (safari HyenaFilter; m2 hyena_utils.HyenaFilter), shared by
// the Hyena and M2 blocks:
//   z = pos_emb.z[:, :L]                                    (trainable [1, l_max, emb_dim])
//   h = sin(w_mod * freq * Linear(z))  ... (1 + num_inner_mlps Linear+Sin pairs, ONE Sin)
//   h = Linear(h), no bias                                  -> [L, channels]
//   h = h * (exp(-t * |deltas|) + shift)                    (when modulate)
// The filter is generated for l_max positions (t and z depend on l_max, not L) and truncated.
// Names mirror the reference: pos_emb.{z,t}, implicit_filter.{0,1,2,4,6}.*, optional
// implicit_filter_rev.{0,2,4,6}.* (M2's reverse filter, sharing implicit_filter.1's Sin),
// modulation.deltas, bias (the per-channel skip term of the long convolution).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace herd::ops {

struct ImplicitFilterOptions {
  int64_t channels = 0;  // filter output channels
  int64_t l_max = 0;     // positions generated
  int64_t order = 16;    // MLP width (reference: `order` / filter_order)
  int64_t emb_dim = 3;   // odd, >= 3: [t, cos bands, -sin bands]
  double w = 1.0;        // Sin frequency init
  double w_mod = 1.0;    // non-trainable frequency multiplier (m2)
  int64_t num_inner_mlps = 2;
  bool modulate = true;
  bool bidirectional = false;  // adds implicit_filter_rev (M2)
  double fast_decay_pct = 0.3, slow_decay_pct = 1.5, target = 1e-2, shift = 0.0;
};

// sin(w_mod * freq * x), freq [1, dim] trainable.
class SinImpl : public torch::nn::Module {
 public:
  SinImpl(int64_t dim, double w, double w_mod);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor freq;  // (1, dim)
  double w_mod;
};
TORCH_MODULE(Sin);

// Linear/Sin stack registered under the reference's Sequential indices. Only the module at
// index 1 owns the Sin; the other Sin positions (3, 5, ...) reuse it without registering, so
// the shared freq appears once in named_parameters() and its gradient sums all uses.
class FilterMlpImpl : public torch::nn::Module {
 public:
  FilterMlpImpl(const ImplicitFilterOptions& o, Sin act, bool owns_act);
  torch::Tensor forward(const torch::Tensor& z);  // [.., emb_dim] -> [.., channels]
  // [L, emb_dim] -> [channels, L] contiguous: the output layer as W h^T, so the long conv
  // reads rows without a transposing copy (and backward without a scatter into [1, L, C]).
  torch::Tensor forward_channels_first(const torch::Tensor& z);
  std::vector<torch::nn::Linear> linears;  // hidden layers then the bias-free output
  Sin act;
};
TORCH_MODULE(FilterMlp);

class PositionalFeaturesImpl : public torch::nn::Module {
 public:
  PositionalFeaturesImpl(int64_t emb_dim, int64_t l_max);
  torch::Tensor z;  // (1, l_max, emb_dim) trainable
  torch::Tensor t;  // (1, l_max, 1) buffer linspace(0, 1, l_max)
};
TORCH_MODULE(PositionalFeatures);

class ExponentialModulationImpl : public torch::nn::Module {
 public:
  ExponentialModulationImpl(const ImplicitFilterOptions& o);
  torch::Tensor forward(const torch::Tensor& t, const torch::Tensor& h);
  // The same on k [channels, L] with t [L]: the same products per element.
  torch::Tensor forward_channels_first(const torch::Tensor& t, const torch::Tensor& k);
  torch::Tensor deltas;  // (1, 1, channels) buffer
  double shift;
};
TORCH_MODULE(ExponentialModulation);

class ImplicitFilterImpl : public torch::nn::Module {
 public:
  explicit ImplicitFilterImpl(const ImplicitFilterOptions& o);
  // Forward (causal) kernel [channels, L] for L <= l_max.
  torch::Tensor filter(int64_t L);
  // Reverse (anti-causal) kernel [channels, L]; bidirectional filters only.
  torch::Tensor filter_rev(int64_t L);

  ImplicitFilterOptions options;
  PositionalFeatures pos_emb{nullptr};
  FilterMlp implicit_filter{nullptr}, implicit_filter_rev{nullptr};
  ExponentialModulation modulation{nullptr};
  torch::Tensor bias;  // (channels) long-conv skip term, init randn

 private:
  torch::Tensor generate(FilterMlp& mlp, int64_t L);
};
TORCH_MODULE(ImplicitFilter);

}  // namespace herd::ops
