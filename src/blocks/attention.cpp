#include "blocks/attention.h"

#include <cmath>

namespace herd {

AttentionImpl::AttentionImpl(int64_t d_model_, int64_t n_head_, bool causal_, bool bias)
    : d_model(d_model_), n_head(n_head_), causal(causal_) {
  HERD_CHECK(n_head > 0 && d_model % n_head == 0, "attention: d_model ", d_model,
             " must be divisible by n_head ", n_head);
  // Same init as torch.nn.MultiheadAttention: xavier_uniform on the packed projection.
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * d_model, d_model}));
  torch::nn::init::xavier_uniform_(in_proj_weight);
  if (bias) in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * d_model}));
  out_proj = register_module(
      "out_proj", torch::nn::Linear(torch::nn::LinearOptions(d_model, d_model).bias(bias)));
  if (bias) torch::nn::init::zeros_(out_proj->bias);
}

torch::Tensor AttentionImpl::project_qkv(const torch::Tensor& x) {
  return torch::nn::functional::linear(x, in_proj_weight, in_proj_bias);
}

torch::Tensor AttentionImpl::attend(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& pad) {
  if (split_parts() > 1) return attend_shard(q, k, v, pad);
  const int64_t B = q.size(0), L = q.size(1), dh = d_model / n_head;
  auto heads = [&](const torch::Tensor& t) { return t.view({B, L, n_head, dh}).transpose(1, 2); };
  // Scale 1/sqrt(d_head) (SDPA's default), causal mask when the stack is causal. Right pads
  // need no mask of their own in a causal stack: no real position sees them.
  std::optional<torch::Tensor> keep;  // [B, 1, 1, L]: true where a key may be attended
  if (pad.defined() && !causal) keep = pad.logical_not().view({B, 1, 1, L});
  auto o = at::scaled_dot_product_attention(heads(q), heads(k), heads(v), keep,
                                            /*dropout_p=*/is_training() ? dropout : 0.0,
                                            /*is_causal=*/causal);
  return out_proj(o.transpose(1, 2).reshape({B, L, d_model}));
}

torch::Tensor AttentionImpl::attend_shard(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, const torch::Tensor& pad) {
  HERD_CHECK(!pad.defined(), "attention: padded batches are not split (train.context_parallel)");
  const int64_t B = q.size(0), L = q.size(1), dh = d_model / n_head, C = split_parts();
  const double p = is_training() ? dropout : 0.0;
  if (n_head % C == 0) {
    // Heads split: [B, L/C, D] -> [B, dh, H, L/C] (heads as channels) -> H/C heads over all
    // L positions, attended whole, and back.
    auto heads = [&](const torch::Tensor& t) {
      auto channels = t.view({B, L, n_head, dh}).permute({0, 3, 2, 1});
      return gather_positions(channels).permute({0, 2, 3, 1});  // [B, H/C, L, dh]
    };
    auto o = at::scaled_dot_product_attention(heads(q), heads(k), heads(v), {}, p, causal);
    o = scatter_positions(o.permute({0, 3, 1, 2}));  // [B, dh, H, L/C]
    return out_proj(o.permute({0, 3, 2, 1}).reshape({B, L, d_model}));
  }
  // Heads that do not split: every position's keys and values, this shard's queries.
  const int64_t Lg = L * C, first = position_offset(L);
  auto whole = [&](const torch::Tensor& t) {
    return all_positions(t.transpose(1, 2)).transpose(1, 2);  // [B, L*C, D]
  };
  auto heads = [&](const torch::Tensor& t, int64_t n) {
    return t.reshape({B, n, n_head, dh}).transpose(1, 2);
  };
  std::optional<torch::Tensor> mask;  // query i (global first + i) sees keys <= first + i
  if (causal)
    mask = torch::arange(Lg, q.options().dtype(torch::kLong)).unsqueeze(0) <=
           (torch::arange(L, q.options().dtype(torch::kLong)) + first).unsqueeze(1);
  auto o = at::scaled_dot_product_attention(heads(q, L), heads(whole(k), Lg), heads(whole(v), Lg),
                                            mask, p, false);
  return out_proj(o.transpose(1, 2).reshape({B, L, d_model}));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  auto qkv = project_qkv(x).chunk(3, -1);
  return attend(qkv[0], qkv[1], qkv[2]);
}

torch::Tensor AttentionImpl::forward_padded(const torch::Tensor& x, const torch::Tensor& pad) {
  auto qkv = project_qkv(x).chunk(3, -1);
  return attend(qkv[0], qkv[1], qkv[2], pad);
}

std::shared_ptr<MixerCache> AttentionImpl::allocate_cache(int64_t batch, int64_t max_len,
                                                          const torch::TensorOptions& options) {
  HERD_CHECK(causal, "attention: cached generation needs a causal stack");
  auto c = std::make_shared<KvCache>();
  c->max_len = max_len;
  c->k = torch::zeros({batch, n_head, max_len, d_model / n_head}, options);
  c->v = torch::zeros_like(c->k);
  return c;
}

torch::Tensor AttentionImpl::attend_cached(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, KvCache& c) {
  const int64_t B = q.size(0), T = q.size(1), dh = d_model / n_head, n = c.length + T;
  HERD_CHECK(n <= c.max_len, "generate: ", n, " positions exceed the cache's ", c.max_len);
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, n_head, dh}).transpose(1, 2); };
  c.k.narrow(2, c.length, T).copy_(heads(k));
  c.v.narrow(2, c.length, T).copy_(heads(v));
  auto keys = c.k.narrow(2, 0, n), values = c.v.narrow(2, 0, n);
  std::optional<torch::Tensor> mask;  // new position i sees cached positions <= length + i
  if (T > 1)
    mask = torch::arange(n, q.options().dtype(torch::kLong)).unsqueeze(0) <=
           (torch::arange(T, q.options().dtype(torch::kLong)) + c.length).unsqueeze(1);
  auto o = at::scaled_dot_product_attention(heads(q), keys, values, mask, 0.0, false);
  c.length = n;
  return out_proj(o.transpose(1, 2).reshape({B, T, d_model}));
}

torch::Tensor AttentionImpl::step(const torch::Tensor& x, MixerCache& cache) {
  auto qkv = project_qkv(x).chunk(3, -1);
  return attend_cached(qkv[0], qkv[1], qkv[2], dynamic_cast<KvCache&>(cache));
}

double read_attention_dropout(cfg::ConfigMap& options) {
  const double p = options.get_double("dropout", 0.0, 0.0, 1.0);
  if (p >= 1.0) options.fail("dropout", str("expected a probability in [0, 1), got ", p));
  return p;
}

SequenceMixer make_attention(const MixerContext& ctx, cfg::ConfigMap& options) {
  const int64_t n_head = options.get_int("n_head", ctx.n_head, 1);
  const bool causal = options.get_bool("causal", ctx.causal);
  const bool bias = options.get_bool("bias", true);
  if (ctx.d_model % n_head != 0)
    options.fail("n_head", str("must divide d_model ", ctx.d_model, ", got ", n_head));
  auto attention = Attention(ctx.d_model, n_head, causal, bias);
  attention->dropout = read_attention_dropout(options);
  return attention.ptr();
}

}  // namespace herd
