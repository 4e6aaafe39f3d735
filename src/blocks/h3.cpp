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
  const int64_t B = u.size(0), L = u.size(1), hd = options.head_dim, H = options.d_model / hd;
  auto q = q_proj(u).transpose(1, 2);  // (B, D, L)
  auto k = k_proj(u).transpose(1, 2);
  auto v = v_proj(u).transpose(1, 2);
  k = shift_conv(k);
  auto Kd = kernel(L);  // (H, L)
  torch::Tensor y;
  if (hd == 1) {
    y = ops::long_conv({k, Kd, D, v, q});  // (k v) conv Kd + D (k v), gated by q
  } else {
    // kv[b, d1, d2, h, l] = k[h*hd+d1] v[h*hd+d2]: the SSM runs over h for every (d1, d2).
    auto kv = (k.reshape({B, H, hd, 1, L}) * v.reshape({B, H, 1, hd, L})).permute({0, 2, 3, 1, 4});
    auto yh = ops::fft_conv(kv, Kd, D);
    auto qh = q.reshape({B, H, hd, L}).transpose(1, 2).unsqueeze(2);  // (B, d1, 1, H, L)
    y = (yh * qh).sum(1).reshape({B, hd * H, L});                     // channel d2*H + h
  }
  return output_linear(y.transpose(1, 2));
}

torch::Tensor H3Impl::shift_conv(const torch::Tensor& k) {
  // Taps j >= N of the shift kernel are zero; the long conv of only N taps is the same sum.
  const int64_t L = k.size(-1), N = options.d_state;
  return ops::long_conv({k, ssm_k_kernel(std::min(N, L)), ssm_k_D});
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
  std::vector<ParamGroupTag> tags;
  for (const char* name :
       {"ssm_k_kernel.B", "kernel.log_dt", "kernel.B", "kernel.inv_A_real", "kernel.A_imag"}) {
    ParamGroupTag t{"ssm", name, options.ssm_lr, std::nullopt, 0.0, options.ssm_lr ? "ssm_lr" : ""};
    if (!options.ssm_lr) t.max_lr = 1e-3;
    tags.push_back(t);
  }
  return tags;
}

SequenceMixer make_h3(const MixerContext& ctx, cfg::ConfigMap& opt) {
  H3Options o;
  o.d_model = ctx.d_model;
  o.l_max = ctx.max_seq_len;
  o.d_state = opt.get_int("d_state", o.d_state, 2);
  if (o.d_state % 2 != 0)
    opt.fail("d_state", str("expected an even integer (N/2 complex modes), got ", o.d_state));
  o.head_dim = opt.get_int("head_dim", o.head_dim, 1);
  if (ctx.d_model % o.head_dim != 0)
    opt.fail("head_dim", str("must divide d_model ", ctx.d_model, ", got ", o.head_dim));
  o.measure = opt.get_choice("measure", o.measure, {"diag-lin", "diag-inv"});
  o.dt_min = opt.get_double("dt_min", o.dt_min, 1e-12);
  o.dt_max = opt.get_double("dt_max", o.dt_max, o.dt_min);
  if (opt.has("ssm_lr")) o.ssm_lr = opt.get_double("ssm_lr", 0.0, 0.0, 10.0);
  if (!ctx.causal)
    throw Error(str(opt.file(), " ", opt.path(),
                    ": h3 is causal only; use mixer m2 for a bidirectional stack"));
  return H3(o).ptr();
}

}  // namespace herd
