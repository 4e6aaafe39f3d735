#include "models/block.h"

#include <cmath>

#include "blocks/registry.h"
#include "models/activation_checkpoint.h"

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

torch::nn::LayerNorm layer_norm(const ModelConfig& cfg) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.d_model}).eps(cfg.norm_eps));
}

BlockImpl::BlockImpl(const ModelConfig& cfg, const MixerSpec& spec, const MixerContext& ctx)
    : post_norm(cfg.norm == "post"), mixer_residual(cfg.mixer_residual || cfg.norm != "post") {
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
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  auto ffn = [&](const torch::Tensor& t) { return mlp ? mlp(t) : glu_mlp(t); };
  if (!post_norm) {
    auto y = x + mixer->forward(ln_1(x));
    return y + ffn(ln_2(y));
  }
  auto y = mixer_residual ? ln_1(x + mixer->forward(x)) : mixer->forward(x);
  return ln_2(y + ffn(y));
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

torch::Tensor run_blocks(const torch::nn::ModuleList& blocks, torch::Tensor x) {
  // Each block recomputed in backward under train.activation_checkpointing: layer.
  for (const auto& block : *blocks)
    x = maybe_checkpointed(
        [block](const torch::Tensor& t) { return block->as<BlockImpl>()->forward(t); }, x);
  return x;
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
