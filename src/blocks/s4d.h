// S4D (Gu et al. 2022; safari src/models/sequence/ssm/s4d.py:S4D with channels 1,
// bidirectional false, activation gelu, postact none, transposed false). With H = d_model:
//   y   = longconv(u^T; K, Dskip = D[0])           K: S4D kernel, zero-order hold
//   (ops/ssm_kernel.h) out = output_linear(gelu(y)^T)                 exact (erf) GELU, plain
//   Linear(H, H)
// Causal only. Generation runs the kernel's recurrence (the reference's step()): O(N/2) per
// position and channel.
#pragma once

#include "blocks/mixer.h"
#include "ops/ssm_kernel.h"

namespace herd {

struct S4DOptions {
  int64_t d_model = 0;
  int64_t l_max = 0;
  int64_t d_state = 64;             // N: N/2 complex modes
  int64_t n_ssm = 1;                // copies of A shared by the channels (must divide d_model)
  std::string scaling = "inverse";  // S4D-Inv; "linear" is S4D-Lin
  double dt_min = 0.001, dt_max = 0.1;
  // The SSM parameters' lr (weight decay 0); unset: min(1e-3, optimizer.lr) as safari's s4d.yaml.
  std::optional<double> ssm_lr;
};

struct S4DCache : MixerCache {
  DiagSSMStream ssm;
};

class S4DImpl : public SequenceMixerImpl {
 public:
  explicit S4DImpl(const S4DOptions& o);
  torch::Tensor forward(const torch::Tensor& u) override;  // [B, L, D] -> [B, L, D]
  std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                             const torch::TensorOptions& options) override;
  torch::Tensor step(const torch::Tensor& u, MixerCache& cache) override;
  // Group "ssm": kernel.log_dt, kernel.log_w_real, kernel.w_imag (safari's `register(...,
  // lr, 0.0)`); kernel.C, D and output_linear stay in the stack's groups.
  std::vector<ParamGroupTag> param_group_tags() const override;
  std::string context_parallel_refusal(int64_t parts, int64_t shard_length) const override;

  S4DOptions options;
  torch::Tensor D;                 // (1, H) skip, init randn (the reference's channels row)
  ops::S4DKernel kernel{nullptr};  // (H, L)
  torch::nn::Linear output_linear{nullptr};  // H -> H
};
TORCH_MODULE(S4D);

SequenceMixer make_s4d(const MixerContext& ctx, cfg::ConfigMap& options);

}  // namespace herd
