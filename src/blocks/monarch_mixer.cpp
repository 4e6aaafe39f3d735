#include "blocks/monarch_mixer.h"

#include "blocks/long_conv_common.h"
#include "ops/long_conv.h"
#include "ops/short_conv.h"

namespace herd {

MonarchMixerImpl::MonarchMixerImpl(const MonarchMixerOptions& o) : options(o) {
  const int64_t D = o.d_model;
  HERD_CHECK(D > 0, "m2: d_model must be positive, got ", D);
  HERD_CHECK(o.short_filter_order >= 1, "m2: short_filter_order must be >= 1, got ",
             o.short_filter_order);
  ops::ImplicitFilterOptions f;
  f.channels = D;
  f.l_max = o.l_max;
  f.order = o.filter_order;
  f.emb_dim = o.emb_dim;
  f.w = o.w;
  f.w_mod = o.w_mod;
  f.num_inner_mlps = o.num_inner_mlps;
  f.modulate = o.modulate;
  f.bidirectional = o.bidirectional;
  // Registration order as the reference.
  filter_fn = register_module("filter_fn", ops::ImplicitFilter(f));
  if (o.residual_long_conv) filter_fn2 = register_module("filter_fn2", ops::ImplicitFilter(f));
  in_linear = register_module("in_linear", torch::nn::Linear(D, 3 * D));
  out_linear = register_module("out_linear", torch::nn::Linear(D, D));
  const int64_t width = 3 * D;
  short_filter = register_module(
      "short_filter", torch::nn::Conv1d(torch::nn::Conv1dOptions(width, width, o.short_filter_order)
                                            .groups(width)
                                            .padding(o.short_filter_order - 1)));
}

torch::Tensor MonarchMixerImpl::long_conv(ops::ImplicitFilter& f, const torch::Tensor& x,
                                          const torch::Tensor& pre, const torch::Tensor& post,
                                          int64_t L) {
  // Context parallel: the filters of every position, this shard's channels' rows.
  return ops::long_conv(
      {x, local_channels(f->filter(L), 0), local_channels(f->bias, 0), pre, post,
       options.bidirectional ? local_channels(f->filter_rev(L), 0) : torch::Tensor()});
}

torch::Tensor MonarchMixerImpl::forward(const torch::Tensor& u) {
  return mix(u, {});
}

torch::Tensor MonarchMixerImpl::forward_padded(const torch::Tensor& u, const torch::Tensor& pad) {
  return mix(u, pad.logical_not().to(u.scalar_type()).unsqueeze(1));
}

torch::Tensor MonarchMixerImpl::mix(const torch::Tensor& u, const torch::Tensor& keep) {
  const int64_t D = options.d_model;
  check_mixer_input("m2", u, D, options.l_max);
  // Context parallel (blocks/sequence_split.h): u holds a shard of the positions; after the
  // short conv the chunks go to D/C channels over all L positions, and back at the end.
  const int64_t L = global_length(u.size(1)), C = split_parts();
  HERD_CHECK(!keep.defined() || C == 1,
             "m2: padded batches are not split (train.context_parallel)");
  auto z = in_linear(u).transpose(1, 2);  // (B, 3D, L/C): chunks x1, x2, v
  z = split_short_conv(z, short_filter->weight, short_filter->bias);
  if (C > 1) z = gather_positions(z.unflatten(1, {3, D})).flatten(1, 2);
  auto x = z.split(D / C, 1);
  // (x[2] x[0]) conv, gated by x[1]; with pads, x[0] zeroed there zeroes the product.
  auto y = long_conv(filter_fn, x[2], keep.defined() ? x[0] * keep : x[0], x[1], L);
  // The residual long conv reads the block input itself and is added after the x2 gate.
  if (filter_fn2) {
    auto ut = gather_positions(u.transpose(1, 2));
    y = y + long_conv(filter_fn2, keep.defined() ? ut * keep : ut, {}, {}, L);
  }
  return out_linear(scatter_positions(y).transpose(1, 2));
}

std::shared_ptr<MixerCache> MonarchMixerImpl::allocate_cache(int64_t batch, int64_t max_len,
                                                             const torch::TensorOptions&) {
  HERD_CHECK(!options.bidirectional, "m2: cached generation needs the causal mixer");
  HERD_CHECK(max_len <= options.l_max, "m2: generation length ", max_len, " exceeds l_max ",
             options.l_max);
  torch::NoGradGuard no_grad;
  auto c = std::make_shared<MonarchMixerCache>();
  c->max_len = max_len;
  c->short_conv =
      ShortConvStream(short_filter->weight.detach(), short_filter->bias.detach(), batch);
  c->conv = FilterStream(filter_fn->filter(max_len), filter_fn->bias.detach(), batch, max_len);
  if (filter_fn2)
    c->residual_conv =
        FilterStream(filter_fn2->filter(max_len), filter_fn2->bias.detach(), batch, max_len);
  return c;
}

torch::Tensor MonarchMixerImpl::step(const torch::Tensor& u, MixerCache& cache) {
  auto& c = dynamic_cast<MonarchMixerCache&>(cache);
  const int64_t D = options.d_model;
  auto z = c.short_conv.push(in_linear(u).transpose(1, 2));  // (B, 3D, T): x1, x2, v
  auto x = z.split(D, 1);
  auto y = c.conv.push(x[2] * x[0]) * x[1];
  if (filter_fn2) y = y + c.residual_conv.push(u.transpose(1, 2));
  c.length += u.size(1);
  return out_linear(y.transpose(1, 2));
}

std::string MonarchMixerImpl::context_parallel_refusal(int64_t parts, int64_t shard_length) const {
  auto why = channel_split_refusal("d_model", options.d_model, parts);
  if (why.empty())
    why = halo_refusal("short_filter_order", options.short_filter_order - 1, shard_length);
  return why;
}

std::vector<ParamGroupTag> MonarchMixerImpl::param_group_tags() const {
  std::vector<ParamGroupTag> tags;
  for (const char* f : {"filter_fn.", "filter_fn2."}) {
    const auto& set = options.set_options;
    tags.push_back({"filter", std::string(f) + "implicit_filter.", options.filter_lr, std::nullopt,
                    options.filter_wd, option_if_set(set, "filter_lr"),
                    option_if_set(set, "filter_wd")});
    tags.push_back({"pos_emb", std::string(f) + "pos_emb.z", options.lr_pos_emb, std::nullopt, 0.0,
                    option_if_set(set, "lr_pos_emb"), ""});
  }
  return tags;
}

SequenceMixer make_m2(const MixerContext& ctx, cfg::ConfigMap& opt) {
  MonarchMixerOptions o;
  o.d_model = ctx.d_model;
  o.l_max = ctx.max_seq_len;
  o.bidirectional = opt.get_bool("bidirectional", !ctx.causal);
  if (ctx.causal && o.bidirectional)
    opt.fail("bidirectional", "must be false in a causal stack (future tokens would leak)");
  o.filter_order = opt.get_int("filter_order", o.filter_order, 1);
  o.emb_dim = opt.get_int("emb_dim", o.emb_dim, 3);
  if (o.emb_dim % 2 == 0)
    opt.fail("emb_dim",
             str("expected an odd integer >= 3 (t, cos and sin bands), got ", o.emb_dim));
  o.w = opt.get_double("w", o.w);
  o.w_mod = opt.get_double("w_mod", o.w_mod);
  o.residual_long_conv = opt.get_bool("residual_long_conv", o.residual_long_conv);
  o.short_filter_order = opt.get_int("short_filter_order", o.short_filter_order, 1);
  o.num_inner_mlps = opt.get_int("num_inner_mlps", o.num_inner_mlps, 0);
  o.modulate = opt.get_bool("modulate", o.modulate);
  o.filter_lr = opt.get_double("filter_lr", o.filter_lr, 0.0, 10.0);
  o.filter_wd = opt.get_double("filter_wd", o.filter_wd, 0.0, 10.0);
  o.lr_pos_emb = opt.get_double("lr_pos_emb", o.lr_pos_emb, 0.0, 10.0);
  for (const char* k : {"filter_lr", "filter_wd", "lr_pos_emb"})
    if (opt.has(k)) o.set_options.insert(k);
  return MonarchMixer(o).ptr();
}

}  // namespace herd
