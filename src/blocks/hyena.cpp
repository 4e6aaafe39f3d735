#include "blocks/hyena.h"

#include "blocks/long_conv_common.h"
#include "ops/long_conv.h"
#include "ops/short_conv.h"

namespace herd {

HyenaImpl::HyenaImpl(const HyenaOptions& o) : options(o) {
  const int64_t D = o.d_model, N = o.order;
  HERD_CHECK(D > 0, "hyena: d_model must be positive, got ", D);
  HERD_CHECK(N >= 2, "hyena: order must be >= 2, got ", N);
  HERD_CHECK(o.short_filter_order >= 1, "hyena: short_filter_order must be >= 1, got ",
             o.short_filter_order);
  // Registration order as the reference: projections, short filter, implicit filter.
  out_proj = register_module("out_proj", torch::nn::Linear(D, D));
  in_proj = register_module("in_proj", torch::nn::Linear(D, (N + 1) * D));
  const int64_t width = (N + 1) * D;
  short_filter = register_module(
      "short_filter", torch::nn::Conv1d(torch::nn::Conv1dOptions(width, width, o.short_filter_order)
                                            .groups(width)
                                            .padding(o.short_filter_order - 1)));
  ops::ImplicitFilterOptions f;
  f.channels = (N - 1) * D;
  f.l_max = o.l_max;
  f.order = o.filter_order;
  f.emb_dim = o.emb_dim;
  f.w = o.w;
  f.num_inner_mlps = o.num_inner_mlps;
  f.modulate = o.modulate;
  filter_fn = register_module("filter_fn", ops::ImplicitFilter(f));
}

torch::Tensor HyenaImpl::forward(const torch::Tensor& u) {
  const int64_t D = options.d_model, N = options.order;
  check_mixer_input("hyena", u, D, options.l_max);
  // Context parallel (blocks/sequence_split.h): u holds a shard of the positions; after the
  // short conv every chunk goes to D/C channels over all L positions, and back at the end.
  const int64_t L = global_length(u.size(1)), Dl = D / split_parts();
  auto z = in_proj(u).transpose(1, 2);  // (B, (N+1)D, L/C): chunks x0, .., x_{N-1}, v
  z = split_short_conv(z, short_filter->weight, short_filter->bias);
  if (split_parts() > 1) z = gather_positions(z.unflatten(1, {N + 1, D})).flatten(1, 2);
  auto x = z.split(Dl, 1);
  // Filter channel d*(N-1)+o serves recurrence step o; the skip term uses the same layout.
  auto k = local_channels(filter_fn->filter(L).reshape({D, N - 1, L}), 0);
  auto skip = local_channels(filter_fn->bias.view({D, N - 1}), 0);
  // Step o gates its input with x_{N-1-o}; the last step's output is gated with x0. Each
  // step is one fused op (ops/long_conv.h), whose output the projection reads as [B, L, D].
  // With dropout the gate is applied (and dropped) before the op, which then convolves as is.
  const bool drop = options.dropout > 0 && is_training();
  auto v = x[N];
  for (int64_t o = 0; o < N - 1; ++o) {
    const auto post = o == N - 2 ? x[0] : torch::Tensor();
    if (drop)
      v = ops::long_conv({torch::dropout(v * x[N - 1 - o], options.dropout, true), k.select(1, o),
                          skip.select(1, o), torch::Tensor(), post});
    else
      v = ops::long_conv({v, k.select(1, o), skip.select(1, o), x[N - 1 - o], post});
  }
  return out_proj(scatter_positions(v).transpose(1, 2));
}

std::string HyenaImpl::context_parallel_refusal(int64_t parts, int64_t shard_length) const {
  auto why = channel_split_refusal("d_model", options.d_model, parts);
  if (why.empty())
    why = halo_refusal("short_filter_order", options.short_filter_order - 1, shard_length);
  return why;
}

std::vector<ParamGroupTag> HyenaImpl::param_group_tags() const {
  const auto& set = options.set_options;
  return {{"filter", "filter_fn.implicit_filter.", options.filter_lr, std::nullopt,
           options.filter_wd, option_if_set(set, "filter_lr"), option_if_set(set, "filter_wd")},
          {"pos_emb", "filter_fn.pos_emb.z", options.lr_pos_emb, std::nullopt, 0.0,
           option_if_set(set, "lr_pos_emb"), ""}};
}

std::shared_ptr<MixerCache> HyenaImpl::allocate_cache(int64_t batch, int64_t max_len,
                                                      const torch::TensorOptions&) {
  const int64_t D = options.d_model, N = options.order;
  HERD_CHECK(max_len <= options.l_max, "hyena: generation length ", max_len, " exceeds l_max ",
             options.l_max);
  torch::NoGradGuard no_grad;
  auto c = std::make_shared<HyenaCache>();
  c->max_len = max_len;
  c->short_conv =
      ShortConvStream(short_filter->weight.detach(), short_filter->bias.detach(), batch);
  auto k = filter_fn->filter(max_len).reshape({D, N - 1, max_len});
  auto skip = filter_fn->bias.view({D, N - 1});
  for (int64_t o = 0; o < N - 1; ++o)
    c->steps.emplace_back(k.select(1, o).contiguous(), skip.select(1, o).contiguous(), batch,
                          max_len);
  return c;
}

torch::Tensor HyenaImpl::step(const torch::Tensor& u, MixerCache& cache) {
  auto& c = dynamic_cast<HyenaCache&>(cache);
  const int64_t D = options.d_model, N = options.order;
  auto z = c.short_conv.push(in_proj(u).transpose(1, 2));  // (B, (N+1)D, T)
  auto x = z.split(D, 1);
  auto v = x[N];
  for (int64_t o = 0; o < N - 1; ++o) v = c.steps[o].push(v * x[N - 1 - o]);
  c.length += u.size(1);
  return out_proj((v * x[0]).transpose(1, 2));
}

SequenceMixer make_hyena(const MixerContext& ctx, cfg::ConfigMap& opt) {
  HyenaOptions o;
  o.d_model = ctx.d_model;
  o.l_max = ctx.max_seq_len;
  o.order = opt.get_int("order", o.order, 2);
  o.filter_order = opt.get_int("filter_order", o.filter_order, 1);
  o.emb_dim = opt.get_int("emb_dim", o.emb_dim, 3);
  if (o.emb_dim % 2 == 0)
    opt.fail("emb_dim",
             str("expected an odd integer >= 3 (t, cos and sin bands), got ", o.emb_dim));
  o.w = opt.get_double("w", o.w);
  o.short_filter_order = opt.get_int("short_filter_order", o.short_filter_order, 1);
  o.num_inner_mlps = opt.get_int("num_inner_mlps", o.num_inner_mlps, 0);
  o.modulate = opt.get_bool("modulate", o.modulate);
  o.dropout = opt.get_double("dropout", o.dropout, 0.0, 1.0);
  if (o.dropout >= 1.0)
    opt.fail("dropout", str("expected a probability in [0, 1), got ", o.dropout));
  o.filter_lr = opt.get_double("filter_lr", o.filter_lr, 0.0, 10.0);
  o.filter_wd = opt.get_double("filter_wd", o.filter_wd, 0.0, 10.0);
  o.lr_pos_emb = opt.get_double("lr_pos_emb", o.lr_pos_emb, 0.0, 10.0);
  for (const char* k : {"filter_lr", "filter_wd", "lr_pos_emb"})
    if (opt.has(k)) o.set_options.insert(k);
  require_causal(ctx, opt, "hyena");
  return Hyena(o).ptr();
}

}  // namespace herd
