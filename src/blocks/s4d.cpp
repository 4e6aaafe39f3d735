#include "blocks/s4d.h"

#include "blocks/long_conv_common.h"
#include "ops/long_conv.h"

namespace herd {

S4DImpl::S4DImpl(const S4DOptions& o) : options(o) {
  const int64_t H = o.d_model;
  HERD_CHECK(H > 0, "s4d: d_model must be positive, got ", H);
  // Registration order as the reference.
  D = register_parameter("D", torch::randn({1, H}));
  kernel = register_module("kernel",
                           ops::S4DKernel(H, o.d_state, o.n_ssm, o.scaling, o.dt_min, o.dt_max));
  output_linear = register_module("output_linear", torch::nn::Linear(H, H));
}

torch::Tensor S4DImpl::forward(const torch::Tensor& u) {
  check_mixer_input("s4d", u, options.d_model, options.l_max);
  // Context parallel (blocks/sequence_split.h): H/C channels over all L positions, and back.
  const int64_t L = global_length(u.size(1));
  auto y = ops::long_conv({gather_positions(u.transpose(1, 2)), local_channels(kernel(L), 0),
                           local_channels(D[0], 0)});  // (B, H/C, L)
  return output_linear(scatter_positions(torch::gelu(y)).transpose(1, 2));
}

std::string S4DImpl::context_parallel_refusal(int64_t parts, int64_t) const {
  return channel_split_refusal("d_model", options.d_model, parts);
}

std::shared_ptr<MixerCache> S4DImpl::allocate_cache(int64_t batch, int64_t max_len,
                                                    const torch::TensorOptions&) {
  torch::NoGradGuard no_grad;
  auto c = std::make_shared<S4DCache>();
  c->max_len = max_len;
  auto [Ct, dA] = kernel->discretized();
  c->ssm = DiagSSMStream(Ct, dA, D[0], batch);
  return c;
}

torch::Tensor S4DImpl::step(const torch::Tensor& u, MixerCache& cache) {
  auto& c = dynamic_cast<S4DCache&>(cache);
  HERD_CHECK(c.length + u.size(1) <= c.max_len, "generate: ", c.length + u.size(1),
             " positions exceed the cache's ", c.max_len);
  auto y = c.ssm.push(u.transpose(1, 2));  // (B, H, T)
  c.length += u.size(1);
  return output_linear(torch::gelu(y).transpose(1, 2));
}

std::vector<ParamGroupTag> S4DImpl::param_group_tags() const {
  return ssm_group_tags({"kernel.log_dt", "kernel.log_w_real", "kernel.w_imag"}, options.ssm_lr);
}

SequenceMixer make_s4d(const MixerContext& ctx, cfg::ConfigMap& opt) {
  S4DOptions o;
  o.d_model = ctx.d_model;
  o.l_max = ctx.max_seq_len;
  read_ssm_options(opt, o.d_state, o.dt_min, o.dt_max, o.ssm_lr);
  o.n_ssm = opt.get_int("n_ssm", o.n_ssm, 1);
  if (ctx.d_model % o.n_ssm != 0)
    opt.fail("n_ssm", str("must divide d_model ", ctx.d_model, ", got ", o.n_ssm));
  o.scaling = opt.get_choice("scaling", o.scaling, {"inverse", "linear"});
  require_causal(ctx, opt, "s4d");
  return S4D(o).ptr();
}

}  // namespace herd
