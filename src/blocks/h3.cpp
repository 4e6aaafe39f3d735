#include "blocks/h3.h"

#include <algorithm>

#include "blocks/long_conv_common.h"
#include "ops/fft_conv.h"
#include "ops/long_conv.h"

namespace herd {

H3Impl::H3Impl(const H3Options& o) : options(o) {
  const int64_t Dm = o.d_model;
  HERD_CHECK(Dm > 0, "h3: d_model must be positive, got ", Dm);
  HERD_CHECK(o.head_dim >= 1 && Dm % o.head_dim == 0, "h3: head_dim must divide d_model ", Dm,
             ", got ", o.head_dim);
  HERD_CHECK(o.d_state >= 2 && o.d_state % 2 == 0, "h3: d_state must be even and >= 2, got ",
             o.d_state);
  const int64_t H = Dm / o.head_dim;
  // Registration order as the reference.
  q_proj = register_module("q_proj", torch::nn::Linear(Dm, Dm));
  k_proj = register_module("k_proj", torch::nn::Linear(Dm, Dm));
  v_proj = register_module("v_proj", torch::nn::Linear(Dm, Dm));
  ssm_k_kernel = register_module("ssm_k_kernel", ops::ShiftSSMKernel(Dm, o.d_state));
  ssm_k_D = register_parameter("ssm_k_D", torch::randn({Dm}));
  kernel =
      register_module("kernel", ops::DiagSSMKernel(H, o.d_state, o.measure, o.dt_min, o.dt_max));
  D = register_parameter("D", torch::randn({H}));
  output_linear = register_module("output_linear", torch::nn::Linear(Dm, Dm));
}

torch::Tensor H3Impl::forward(const torch::Tensor& u) {
  check_mixer_input("h3", u, options.d_model, options.l_max);
  // Context parallel (blocks/sequence_split.h): u holds a shard of Ls positions; after the shift
  // SSM q, k, v go to H/C heads over all L positions, and the output back to the shard.
  const int64_t B = u.size(0), Ls = u.size(1), L = global_length(Ls), hd = options.head_dim,
                H = options.d_model / hd, Hl = H / split_parts();
  auto q = q_proj(u).transpose(1, 2);  // (B, D, Ls)
  auto k = k_proj(u).transpose(1, 2);
  auto v = v_proj(u).transpose(1, 2);
  k = shift_conv(k);
  q = gather_positions(q), k = gather_positions(k), v = gather_positions(v);  // (B, Hl*hd, L)
  auto Kd = local_channels(kernel(L), 0);                                     // (Hl, L)
  auto Dl = local_channels(D, 0);
  torch::Tensor y;
  if (hd == 1) {
    y = scatter_positions(
        ops::long_conv({k, Kd, Dl, v, q}));  // (k v) conv Kd + D (k v), gated by q
  } else {
    // kv[b, d1, d2, h, l] = k[h*hd+d1] v[h*hd+d2]: the SSM runs over h for every (d1, d2).
    auto kv =
        (k.reshape({B, Hl, hd, 1, L}) * v.reshape({B, Hl, 1, hd, L})).permute({0, 2, 3, 1, 4});
    auto yh = ops::fft_conv(kv, Kd, Dl);
    auto qh = q.reshape({B, Hl, hd, L}).transpose(1, 2).unsqueeze(2);  // (B, d1, 1, Hl, L)
    y = scatter_positions((yh * qh).sum(1)).reshape({B, hd * H, Ls});  // channel d2*H + h
  }
  return output_linear(y.transpose(1, 2));
}

torch::Tensor H3Impl::shift_conv(const torch::Tensor& k) {
  // Taps j >= N of the shift kernel are zero; the long conv of only N taps is the same sum.
  const int64_t Ls = k.size(-1), N = std::min(options.d_state, global_length(Ls));
  if (split_parts() == 1) return ops::long_conv({k, ssm_k_kernel(N), ssm_k_D});
  // A shard: the previous shard's last N-1 positions in front, their outputs dropped.
  return ops::long_conv({shard_halo(k, N - 1), ssm_k_kernel(N), ssm_k_D}).narrow(-1, N - 1, Ls);
}

std::string H3Impl::context_parallel_refusal(int64_t parts, int64_t shard_length) const {
  auto why = channel_split_refusal("d_model / head_dim (heads)", options.d_model / options.head_dim,
                                   parts);
  if (why.empty()) why = halo_refusal("d_state (shift SSM)", options.d_state - 1, shard_length);
  return why;
}

std::shared_ptr<MixerCache> H3Impl::allocate_cache(int64_t batch, int64_t max_len,
                                                   const torch::TensorOptions& opt) {
  if (options.head_dim != 1) return SequenceMixerImpl::allocate_cache(batch, max_len, opt);
  torch::NoGradGuard no_grad;
  auto c = std::make_shared<H3Cache>();
  c->max_len = max_len;
  const int64_t N = std::min(options.d_state, max_len);
  c->shift = ConvStream(ssm_k_kernel(N), ssm_k_D.detach(), batch, max_len);
  auto [Ct, dA] = kernel->discretized();
  c->diag = DiagSSMStream(Ct, dA, D.detach(), batch);
  return c;
}

torch::Tensor H3Impl::step(const torch::Tensor& u, MixerCache& cache) {
  if (options.head_dim != 1) return SequenceMixerImpl::step(u, cache);
  auto& c = dynamic_cast<H3Cache&>(cache);
  auto q = q_proj(u).transpose(1, 2);  // (B, D, T)
  auto k = c.shift.push(k_proj(u).transpose(1, 2));
  auto v = v_proj(u).transpose(1, 2);
  auto y = c.diag.push(k * v) * q;
  c.length += u.size(1);
  return output_linear(y.transpose(1, 2));
}

std::vector<ParamGroupTag> H3Impl::param_group_tags() const {
  return ssm_group_tags(
      {"ssm_k_kernel.B", "kernel.log_dt", "kernel.B", "kernel.inv_A_real", "kernel.A_imag"},
      options.ssm_lr);
}

SequenceMixer make_h3(const MixerContext& ctx, cfg::ConfigMap& opt) {
  H3Options o;
  o.d_model = ctx.d_model;
  o.l_max = ctx.max_seq_len;
  read_ssm_options(opt, o.d_state, o.dt_min, o.dt_max, o.ssm_lr);
  o.head_dim = opt.get_int("head_dim", o.head_dim, 1);
  if (ctx.d_model % o.head_dim != 0)
    opt.fail("head_dim", str("must divide d_model ", ctx.d_model, ", got ", o.head_dim));
  o.measure = opt.get_choice("measure", o.measure, {"diag-lin", "diag-inv"});
  require_causal(ctx, opt, "h3");
  return H3(o).ptr();
}

}  // namespace herd
