// H3 (Fu et al. 2023; safari src/models/sequence/h3.py:H3, mode "diag", pure-PyTorch path).
// With H = d_model / head_dim heads and channel c = h*head_dim + j:
//   q, k, v = q_proj(u), k_proj(u), v_proj(u)                       (B, D, L)
//   k  = longconv(k; K_shift, Dskip = ssm_k_D)                        shift SSM, D channels
//   kv[d1, d2, h] = k[h*hd+d1] * v[h*hd+d2]
//   y  = longconv(kv; K_diag[h], Dskip = D[h])                        diagonal SSM, H channels
//   o[d2*H + h] = sum_d1 q[h*hd+d1] y[d1, d2, h]                      (reference output order)
//   out = output_linear(o)
// head_dim 1 is the plain H3 of the paper. Causal only.
#pragma once

#include "blocks/mixer.h"
#include "ops/ssm_kernel.h"

namespace herd {

struct H3Options {
  int64_t d_model = 0;
  int64_t l_max = 0;
  int64_t d_state = 64;  // N: shift-SSM state size; the diagonal SSM has N/2 complex modes
  int64_t head_dim = 1;
  std::string measure = "diag-lin";
  double dt_min = 0.001, dt_max = 0.1;
  // The SSM parameters' lr (weight decay 0); unset: min(1e-3, optimizer.lr) as safari's h3.yaml.
  std::optional<double> ssm_lr;
};

// The shift SSM's input stream (N taps) and the diagonal SSM's recurrent state.
struct H3Cache : MixerCache {
  ConvStream shift;
  DiagSSMStream diag;
};

class H3Impl : public SequenceMixerImpl {
 public:
  explicit H3Impl(const H3Options& o);
  torch::Tensor forward(const torch::Tensor& u) override;  // [B, L, D] -> [B, L, D]
  // Generation with the recurrent step (head_dim 1; other head dims rerun forward()).
  std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                             const torch::TensorOptions& options) override;
  torch::Tensor step(const torch::Tensor& u, MixerCache& cache) override;
  // Group "ssm": the shift kernel's B and the diagonal kernel's log_dt, B, A (safari registers
  // exactly these with their own lr and no weight decay; C and the skips D stay default).
  std::vector<ParamGroupTag> param_group_tags() const override;
  std::string context_parallel_refusal(int64_t parts, int64_t shard_length) const override;
  // longconv(k; K_shift, ssm_k_D) for k (B, D, L): the shift kernel has only d_state nonzero
  // taps, so the convolution takes just those (an FFT of length L + N - 1, not 2L).
  torch::Tensor shift_conv(const torch::Tensor& k);

  H3Options options;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, output_linear{nullptr};
  ops::ShiftSSMKernel ssm_k_kernel{nullptr};  // D channels
  torch::Tensor ssm_k_D;                      // (D) skip of the shift SSM, init randn
  ops::DiagSSMKernel kernel{nullptr};         // H channels
  torch::Tensor D;                            // (H) skip of the diagonal SSM, init randn
};
TORCH_MODULE(H3);

SequenceMixer make_h3(const MixerContext& ctx, cfg::ConfigMap& options);

}  // namespace herd
