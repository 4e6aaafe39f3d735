#include "models/gpt.h"

#include <cmath>

#include "blocks/registry.h"

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

GptBlockImpl::GptBlockImpl(const ModelConfig& cfg, const MixerSpec& spec, const MixerContext& ctx) {
  auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.d_model}).eps(cfg.norm_eps));
  };
  ln_1 = register_module("ln_1", ln());
  mixer = register_module("mixer", build_mixer(spec, ctx));
  ln_2 = register_module("ln_2", ln());
  const int64_t hidden = cfg.mlp_ratio * cfg.d_model;
  if (cfg.mlp == "m2_glu")
    glu_mlp = register_module("mlp", MonarchGluMlp(cfg.d_model, hidden, cfg.mlp_nblocks,
                                                   cfg.norm_eps, /*residual_norm=*/false));
  else
    mlp = register_module("mlp", Mlp(cfg.d_model, hidden, parse_activation(cfg.mlp)));
}

torch::Tensor GptBlockImpl::forward(const torch::Tensor& x) {
  auto y = x + mixer->forward(ln_1(x));
  return y + (mlp ? mlp(ln_2(y)) : glu_mlp(ln_2(y)));
}

GptImpl::GptImpl(const ModelConfig& c) : cfg(c) {
  HERD_CHECK(cfg.vocab_size > 0,
             "model.vocab_size: must be positive (set it or take it from the dataset)");
  HERD_CHECK(static_cast<int64_t>(cfg.layers.size()) == cfg.n_layer, "model.layers: plan has ",
             cfg.layers.size(), " entries for ", cfg.n_layer, " layers");
  wte = register_module("wte", torch::nn::Embedding(cfg.vocab_size, cfg.d_model));
  if (cfg.positional == "learned")
    wpe = register_module("wpe", torch::nn::Embedding(cfg.max_seq_len, cfg.d_model));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    MixerContext ctx{cfg.d_model, cfg.n_head, cfg.max_seq_len, /*causal=*/true, i, cfg.n_layer};
    h->push_back(GptBlock(cfg, cfg.layers[i], ctx));
  }
  ln_f = register_module(
      "ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.d_model}).eps(cfg.norm_eps)));
  if (!cfg.tie_embeddings)
    lm_head = register_module(
        "lm_head",
        torch::nn::Linear(torch::nn::LinearOptions(cfg.d_model, cfg.vocab_size).bias(false)));

  // GPT-2 init for the stack's own layers; mixers keep the init of their reference code.
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(wte->weight, 0.0, cfg.init_std);
  if (wpe) torch::nn::init::normal_(wpe->weight, 0.0, cfg.init_std / 2);
  if (lm_head) torch::nn::init::normal_(lm_head->weight, 0.0, cfg.init_std);
  const double residual_std = cfg.init_std / std::sqrt(2.0 * cfg.n_layer);
  for (const auto& block : *h) {
    auto* b = block->as<GptBlockImpl>();
    if (!b->mlp) continue;  // m2_glu keeps BlockdiagLinear's own init, as in M2
    torch::nn::init::normal_(b->mlp->fc1->weight, 0.0, cfg.init_std);
    torch::nn::init::zeros_(b->mlp->fc1->bias);
    torch::nn::init::normal_(b->mlp->fc2->weight, 0.0, residual_std);
    torch::nn::init::zeros_(b->mlp->fc2->bias);
  }
}

torch::Tensor GptImpl::forward(const torch::Tensor& tokens) {
  const int64_t T = tokens.size(1);
  HERD_CHECK(!wpe || T <= cfg.max_seq_len, "sequence length ", T, " exceeds model.max_seq_len ",
             cfg.max_seq_len);
  auto x = wte(tokens);
  if (wpe) x = x + wpe(torch::arange(T, tokens.options()));
  for (const auto& block : *h) x = block->as<GptBlockImpl>()->forward(x);
  x = ln_f(x);
  return lm_head ? lm_head(x) : torch::matmul(x, wte->weight.t());
}

torch::Tensor GptImpl::loss(const torch::Tensor& tokens, const torch::Tensor& targets) {
  auto logits = forward(tokens);
  // Reduced-precision logits are upcast: the softmax over a large vocabulary needs fp32.
  if (logits.scalar_type() != torch::kFloat64) logits = logits.to(torch::kFloat32);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                              targets.reshape({-1}));
}

std::vector<std::string> layer_plan(const ModelConfig& cfg) {
  std::vector<std::string> out;
  for (const auto& l : cfg.layers) out.push_back(l.type);
  return out;
}

int64_t parameter_count(torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

double flops_per_token(const ModelConfig& cfg, torch::nn::Module& model, int64_t seq_len) {
  // Matmul parameters: everything but embeddings/norms/biases, plus the (tied) LM head.
  double matmul_params = 0;
  for (const auto& kv : model.named_parameters()) {
    const auto& name = kv.key();
    if (kv.value().dim() < 2 || name.rfind("wte.", 0) == 0 || name.rfind("wpe.", 0) == 0) continue;
    matmul_params += static_cast<double>(kv.value().numel());
  }
  matmul_params += static_cast<double>(cfg.vocab_size) * cfg.d_model;
  double attention_layers = 0;
  for (const auto& l : cfg.layers)
    if (l.type == "attention" || l.type == "primer") attention_layers += 1;
  return 6.0 * matmul_params + 12.0 * attention_layers * seq_len * cfg.d_model;
}

}  // namespace herd
