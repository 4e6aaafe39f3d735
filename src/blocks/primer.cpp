#include "blocks/primer.h"

#include "blocks/long_conv_common.h"
#include "ops/short_conv.h"

namespace herd {

PrimerMDHAImpl::PrimerMDHAImpl(int64_t d_model_, int64_t n_head_, int64_t dconv_width_,
                               bool causal_, bool bias)
    : AttentionImpl(d_model_, n_head_, causal_, bias), dconv_width(dconv_width_) {
  HERD_CHECK(dconv_width >= 1, "primer: dconv_width must be >= 1, got ", dconv_width);
  auto make = [&](const char* name) {
    // Conv1d only holds the (D, 1, K) weight; the causal padding lives in ops::short_conv.
    auto conv = register_module(
        name,
        torch::nn::Conv1d(
            torch::nn::Conv1dOptions(d_model, d_model, dconv_width).groups(d_model).bias(false)));
    // Paper init: half the weight on the current step, the rest spread over the past taps,
    // so the block starts close to plain attention.
    torch::NoGradGuard no_grad;
    if (dconv_width == 1) {
      conv->weight.fill_(1.0);
    } else {
      conv->weight.fill_(0.5 / static_cast<double>(dconv_width));
      conv->weight.select(2, causal ? dconv_width - 1 : (dconv_width - 1) / 2).fill_(0.5);
    }
    return conv;
  };
  q_dconv = make("q_dconv");
  k_dconv = make("k_dconv");
  v_dconv = make("v_dconv");
}

torch::Tensor PrimerMDHAImpl::forward(const torch::Tensor& x) {
  // One grouped conv over the packed [B, 3D, L] projection: channel blocks q; k; v line up
  // with the concatenated filters.
  auto qkv = project_qkv(x).transpose(1, 2);
  auto parts = dconv(qkv).transpose(1, 2).contiguous().chunk(3, -1);
  return attend(parts[0], parts[1], parts[2]);
}

torch::Tensor PrimerMDHAImpl::forward_padded(const torch::Tensor& x, const torch::Tensor& pad) {
  auto qkv = project_qkv(x).masked_fill(pad.unsqueeze(-1), 0).transpose(1, 2);
  auto parts = dconv(qkv).transpose(1, 2).contiguous().chunk(3, -1);
  return attend(parts[0], parts[1], parts[2], pad);
}

torch::Tensor PrimerMDHAImpl::dconv(const torch::Tensor& qkv) {
  // Context parallel: a shard's neighbours' edge positions stand in for the zeros.
  if (causal) return split_short_conv(qkv, dconv_weight());
  // Bidirectional: centred taps, (K-1)/2 zeros before the sequence and K-1-(K-1)/2 after.
  const int64_t left = (dconv_width - 1) / 2, right = dconv_width - 1 - left, zero = 0, one = 1;
  return torch::conv1d(shard_halo(qkv, left, right), dconv_weight(), {}, at::IntArrayRef(one),
                       at::IntArrayRef(zero), at::IntArrayRef(one), qkv.size(1));
}

std::string PrimerMDHAImpl::context_parallel_refusal(int64_t, int64_t shard_length) const {
  return halo_refusal("dconv_width", causal ? dconv_width - 1 : dconv_width / 2, shard_length);
}

torch::Tensor PrimerMDHAImpl::dconv_weight() const {
  return torch::cat({q_dconv->weight, k_dconv->weight, v_dconv->weight}, 0);
}

std::shared_ptr<MixerCache> PrimerMDHAImpl::allocate_cache(int64_t batch, int64_t max_len,
                                                           const torch::TensorOptions& options) {
  auto kv =
      std::dynamic_pointer_cast<KvCache>(AttentionImpl::allocate_cache(batch, max_len, options));
  auto c = std::make_shared<PrimerCache>();
  static_cast<KvCache&>(*c) = *kv;
  c->dconv = ShortConvStream(dconv_weight().detach().to(options), {}, batch);
  return c;
}

torch::Tensor PrimerMDHAImpl::step(const torch::Tensor& x, MixerCache& cache) {
  auto& c = dynamic_cast<PrimerCache&>(cache);
  auto qkv = c.dconv.push(project_qkv(x).transpose(1, 2));  // [B, 3D, T]
  auto parts = qkv.transpose(1, 2).contiguous().chunk(3, -1);
  return attend_cached(parts[0], parts[1], parts[2], c);
}

SequenceMixer make_primer(const MixerContext& ctx, cfg::ConfigMap& options) {
  const int64_t n_head = options.get_int("n_head", ctx.n_head, 1);
  const int64_t width = options.get_int("dconv_width", 3, 1, 64);
  const bool causal = options.get_bool("causal", ctx.causal);
  const bool bias = options.get_bool("bias", true);
  if (ctx.d_model % n_head != 0)
    options.fail("n_head", str("must divide d_model ", ctx.d_model, ", got ", n_head));
  auto primer = PrimerMDHA(ctx.d_model, n_head, width, causal, bias);
  primer->dropout = read_attention_dropout(options);
  return primer.ptr();
}

}  // namespace herd
