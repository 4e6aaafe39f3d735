#include "blocks/long_conv_common.h"

#include "ops/short_conv.h"

namespace herd {

void check_mixer_input(const char* block, const torch::Tensor& u, int64_t d_model, int64_t l_max) {
  HERD_CHECK(u.dim() == 3 && u.size(2) == d_model, block,
             ": input must be [B, L, d_model=", d_model, "], got ", u.sizes());
  const int64_t L = global_length(u.size(1));  // a shard's under context parallelism
  HERD_CHECK(u.size(1) >= 1 && L <= l_max, block, ": sequence length must be in [1, ", l_max,
             "] (max_seq_len), got ", L);
}

void require_causal(const MixerContext& ctx, const cfg::ConfigMap& opt, const char* block) {
  if (!ctx.causal)
    throw Error(str(opt.file(), " ", opt.path(), ": ", block,
                    " is causal only; use mixer m2 for a bidirectional stack"));
}

void read_ssm_options(cfg::ConfigMap& opt, int64_t& d_state, double& dt_min, double& dt_max,
                      std::optional<double>& ssm_lr) {
  d_state = opt.get_int("d_state", d_state, 2);
  if (d_state % 2 != 0)
    opt.fail("d_state", str("expected an even integer (N/2 complex modes), got ", d_state));
  dt_min = opt.get_double("dt_min", dt_min, 1e-12);
  dt_max = opt.get_double("dt_max", dt_max, dt_min);
  // Read even when absent, so that unknown-key errors list it among the block's keys.
  const double lr = opt.get_double("ssm_lr", 0.0, 0.0, 10.0);
  if (opt.has("ssm_lr")) ssm_lr = lr;
}

std::vector<ParamGroupTag> ssm_group_tags(const std::vector<std::string>& prefixes,
                                          std::optional<double> ssm_lr) {
  std::vector<ParamGroupTag> tags;
  for (const auto& prefix : prefixes) {
    ParamGroupTag t;
    t.group = "ssm";
    t.prefix = prefix;
    t.lr = ssm_lr;
    if (!ssm_lr) t.max_lr = 1e-3;
    t.weight_decay = 0.0;
    if (ssm_lr) t.lr_from = "ssm_lr";
    tags.push_back(t);
  }
  return tags;
}

torch::Tensor split_short_conv(const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
  if (split_parts() == 1) return ops::short_conv(x, weight, bias);
  const int64_t reach = weight.size(-1) - 1, L = x.size(-1);
  return ops::short_conv(shard_halo(x, reach), weight, bias).narrow(-1, reach, L);
}

std::string channel_split_refusal(const char* what, int64_t channels, int64_t parts) {
  if (channels % parts == 0) return "";
  return str(what, " ", channels, " does not split into ", parts, " channel groups");
}

std::string halo_refusal(const char* what, int64_t reach, int64_t shard_length) {
  if (reach <= shard_length) return "";
  return str(what, " reaches ", reach, " positions back, past a shard of ", shard_length,
             " (fewer shards or longer sequences)");
}

}  // namespace herd
