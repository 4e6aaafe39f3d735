#include "models/block.h"

#include <cmath>

#include "blocks/registry.h"
#include "models/activation_checkpoint.h"
#include "ops/add_layer_norm.h"

namespace herd {

SequenceMixer build_mixer(const MixerSpec& spec, const MixerContext& ctx) {
  const MixerEntry& entry = [&]() -> const MixerEntry& {
    try {
      return find_mixer(spec.type);
    } catch (const Error& e) {
      throw Error(str(spec.origin, ".type: ", e.what()));
    }
  }();
  // Options are validated against the block's own keys; errors name the config line.
  auto colon = spec.origin.find(' ');
  std::string file = spec.origin.substr(0, spec.origin.rfind(':', colon));
  std::string path = colon == std::string::npos ? "mixer" : spec.origin.substr(colon + 1);
  cfg::ConfigMap options(spec.options, file, path);
  SequenceMixer mixer = entry.make(ctx, options);
  options.finish();
  return mixer;
}

torch::Tensor embedding_dropout(const torch::Tensor& x, const ModelConfig& cfg, bool training) {
  return cfg.embd_dropout > 0 && training ? torch::dropout(x, cfg.embd_dropout, true) : x;
}

torch::nn::LayerNorm layer_norm(const ModelConfig& cfg) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.d_model}).eps(cfg.norm_eps));
}

BlockImpl::BlockImpl(const ModelConfig& cfg, const MixerSpec& spec, const MixerContext& ctx)
    : post_norm(cfg.norm == "post"),
      mixer_residual(cfg.mixer_residual || cfg.norm != "post"),
      resid_dropout(cfg.resid_dropout) {
  HERD_CHECK(cfg.norm == "pre" || cfg.norm == "post", "model.norm: expected pre|post, got \"",
             cfg.norm, "\"");
  // Registration order as before the stacks shared this block: optimizer state is by index.
  if (mixer_residual) ln_1 = register_module("ln_1", layer_norm(cfg));
  mixer = register_module("mixer", build_mixer(spec, ctx));
  ln_2 = register_module("ln_2", layer_norm(cfg));
  const int64_t hidden = cfg.mlp_ratio * cfg.d_model;
  if (cfg.mlp == "m2_glu")
    glu_mlp = register_module("mlp", MonarchGluMlp(cfg.d_model, hidden, cfg.mlp_nblocks,
                                                   cfg.norm_eps, /*residual_norm=*/false));
  else
    mlp = register_module("mlp", Mlp(cfg.d_model, hidden, parse_activation(cfg.mlp)));
  if (mlp) mlp->dropout = cfg.mlp_dropout;
  if (glu_mlp) glu_mlp->dropout = cfg.mlp_dropout;
}

torch::Tensor BlockImpl::drop(const torch::Tensor& branch) {
  return resid_dropout > 0 && is_training() ? torch::dropout(branch, resid_dropout, true) : branch;
}

Residual BlockImpl::forward_stream(const Residual& in, const torch::Tensor& pad) {
  auto ffn = [&](const torch::Tensor& t) { return mlp ? mlp(t) : glu_mlp(t); };
  auto mix = [&](const torch::Tensor& t) {
    return pad.defined() ? mixer->forward_padded(t, pad) : mixer->forward(t);
  };
  if (!post_norm) {
    // x = in.sum + in.pending, ln_1(x); y = x + mixer(..), ln_2(y); y + mlp(..) left pending.
    auto [x, normed_1] = ops::add_layer_norm(in.sum, in.pending, ln_1);
    auto [y, normed_2] = ops::add_layer_norm(x, drop(mix(normed_1)), ln_2);
    return {y, drop(ffn(normed_2))};
  }
  // Post-norm: y = ln_1(x + mixer(x)) (or mixer(x) alone), out = ln_2(y + mlp(y)).
  const auto x = in.value();
  const auto y = mixer_residual ? ops::add_layer_norm(x, drop(mix(x)), ln_1).normed : mix(x);
  return {ops::add_layer_norm(y, drop(ffn(y)), ln_2).normed, {}};
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  return forward_stream({x, {}}).value();
}

torch::Tensor BlockImpl::step(const torch::Tensor& x, MixerCache& cache) {
  HERD_CHECK(!post_norm, "generate: cached steps need a pre-norm (GPT) block");
  auto y = x + mixer->step(ln_1(x), cache);
  const auto normed = ln_2(y);
  return y + (mlp ? mlp(normed) : glu_mlp(normed));
}

torch::nn::ModuleList make_blocks(const ModelConfig& cfg, bool causal) {
  HERD_CHECK(static_cast<int64_t>(cfg.layers.size()) == cfg.n_layer, "model.layers: plan has ",
             cfg.layers.size(), " entries for ", cfg.n_layer, " layers");
  torch::nn::ModuleList blocks;
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    MixerContext ctx{cfg.d_model, cfg.n_head, cfg.max_seq_len, causal, i, cfg.n_layer};
    blocks->push_back(Block(cfg, cfg.layers[i], ctx));
  }
  return blocks;
}

Residual run_blocks(const torch::nn::ModuleList& blocks, Residual x, const torch::Tensor& pad) {
  // Each block recomputed in backward under train.activation_checkpointing: layer. The
  // residual stream travels as {sum, pending} (the add is fused into the next LayerNorm).
  for (const auto& block : *blocks) {
    auto out = maybe_checkpointed(
        [block](const std::vector<torch::Tensor>& in) {
          auto r = block->as<BlockImpl>()->forward_stream({in[0], in[1]}, in[2]);
          return std::vector<torch::Tensor>{r.sum, r.pending};
        },
        {x.sum, x.pending, pad});
    x = {out[0], out[1]};
  }
  return x;
}

torch::Tensor final_norm(const Residual& x, const torch::nn::LayerNorm& ln) {
  return ops::add_layer_norm(x.sum, x.pending, ln).normed;
}

void init_block_mlps(const torch::nn::ModuleList& blocks, const ModelConfig& cfg) {
  torch::NoGradGuard no_grad;
  const double residual_std = cfg.init_std / std::sqrt(2.0 * cfg.n_layer);
  for (const auto& block : *blocks) {
    auto* b = block->as<BlockImpl>();
    if (!b->mlp) continue;
    torch::nn::init::normal_(b->mlp->fc1->weight, 0.0, cfg.init_std);
    torch::nn::init::zeros_(b->mlp->fc1->bias);
    torch::nn::init::normal_(b->mlp->fc2->weight, 0.0, residual_std);
    torch::nn::init::zeros_(b->mlp->fc2->bias);
  }
}

}  // namespace herd
