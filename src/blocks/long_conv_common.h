// Helpers shared by the long-convolution blocks (hyena, h3, m2, s4d).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blocks/mixer.h"
#include "core/error.h"

namespace herd {

// u must be [B, L, d_model] with 1 <= L <= l_max (kernels are generated for l_max positions).
void check_mixer_input(const char* block, const torch::Tensor& u, int64_t d_model, int64_t l_max);

// A causal-only block in a bidirectional stack: the one-line error naming the config path.
void require_causal(const MixerContext& ctx, const cfg::ConfigMap& opt, const char* block);

// A diagonal SSM's options (h3, s4d): d_state (even, >= 2: N/2 complex modes), dt_min, dt_max
// and ssm_lr (left unset when absent).
void read_ssm_options(cfg::ConfigMap& opt, int64_t& d_state, double& dt_min, double& dt_max,
                      std::optional<double>& ssm_lr);

// The optimizer group "ssm" of the parameters under `prefixes`, as safari registers its SSM
// parameters: weight decay 0, lr = ssm_lr, or min(1e-3, optimizer.lr) when unset (safari's
// h3.yaml and s4d.yaml).
std::vector<ParamGroupTag> ssm_group_tags(const std::vector<std::string>& prefixes,
                                          std::optional<double> ssm_lr);

// ops::short_conv of a shard (blocks/sequence_split.h): the previous shard's last K-1 positions
// in front, their outputs dropped; ops::short_conv itself without a split.
torch::Tensor split_short_conv(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias = {});

// The reasons a block refuses context parallelism (SequenceMixerImpl::context_parallel_refusal),
// "" when there is none: `channels` not splitting into `parts` groups; a filter reaching `reach`
// positions back across a shard of shard_length positions.
std::string channel_split_refusal(const char* what, int64_t channels, int64_t parts);
std::string halo_refusal(const char* what, int64_t reach, int64_t shard_length);

}  // namespace herd
