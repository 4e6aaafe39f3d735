#include "models/gpt.h"

#include "ops/cross_entropy.h"

namespace herd {

GptImpl::GptImpl(const ModelConfig& c) : cfg(c) {
  HERD_CHECK(cfg.stack == "gpt", "model.stack: ", cfg.stack, " is not a GPT (build a ",
             cfg.stack == "bert" ? "Bert" : "Vit", ")");
  HERD_CHECK(cfg.norm == "pre", "model.norm: the GPT stack is pre-norm, got ", cfg.norm);
  HERD_CHECK(cfg.vocab_size > 0,
             "model.vocab_size: must be positive (set it or take it from the dataset)");
  wte = register_module("wte", torch::nn::Embedding(cfg.vocab_size, cfg.d_model));
  if (cfg.positional == "learned")
    wpe = register_module("wpe", torch::nn::Embedding(cfg.max_seq_len, cfg.d_model));
  h = register_module("h", make_blocks(cfg, /*causal=*/true));
  ln_f = register_module("ln_f", layer_norm(cfg));
  if (!cfg.tie_embeddings)
    lm_head = register_module(
        "lm_head",
        torch::nn::Linear(torch::nn::LinearOptions(cfg.d_model, cfg.vocab_size).bias(false)));

  // GPT-2 init for the stack's own layers (model.init: torch keeps the constructors');
  // mixers keep the init of their reference code.
  if (cfg.init != "gpt2") return;
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(wte->weight, 0.0, cfg.init_std);
  if (wpe) torch::nn::init::normal_(wpe->weight, 0.0, cfg.init_std / 2);
  if (lm_head) torch::nn::init::normal_(lm_head->weight, 0.0, cfg.init_std);
  init_block_mlps(h, cfg);
}

torch::Tensor GptImpl::hidden(const torch::Tensor& tokens) {
  // Under context parallelism tokens are one shard of the sequence (blocks/sequence_split.h):
  // positions start at its offset.
  const int64_t T = tokens.size(1), first = position_offset(T);
  HERD_CHECK(!wpe || global_length(T) <= cfg.max_seq_len, "sequence length ", global_length(T),
             " exceeds model.max_seq_len ", cfg.max_seq_len);
  auto x = wte(tokens);
  if (wpe) x = x + wpe(torch::arange(first, first + T, tokens.options()));
  x = embedding_dropout(x, cfg, is_training());
  return final_norm(run_blocks(h, {x, {}}), ln_f);
}

InferenceState GptImpl::start_inference(int64_t batch, int64_t max_len) {
  HERD_CHECK(max_len >= 1 && max_len <= cfg.max_seq_len, "generate: cache length ", max_len,
             " outside [1, model.max_seq_len ", cfg.max_seq_len, "]");
  InferenceState s;
  s.max_len = max_len;
  const auto opt = wte->weight.options().requires_grad(false);
  for (const auto& block : *h)
    s.layers.push_back(block->as<BlockImpl>()->mixer->allocate_cache(batch, max_len, opt));
  return s;
}

torch::Tensor GptImpl::step(const torch::Tensor& tokens, InferenceState& s) {
  const int64_t T = tokens.size(1);
  HERD_CHECK(s.length + T <= s.max_len, "generate: ", s.length + T,
             " positions exceed the cache's ", s.max_len);
  auto x = wte(tokens);
  if (wpe) x = x + wpe(torch::arange(s.length, s.length + T, tokens.options()));
  for (size_t i = 0; i < h->size(); ++i) x = h[i]->as<BlockImpl>()->step(x, *s.layers[i]);
  s.length += T;
  return torch::nn::functional::linear(ln_f(x), head_weight());
}

const torch::Tensor& GptImpl::head_weight() const {
  return lm_head ? lm_head->weight : wte->weight;
}

torch::Tensor GptImpl::forward(const torch::Tensor& tokens) {
  return torch::nn::functional::linear(hidden(tokens), head_weight());
}

torch::Tensor GptImpl::loss(const torch::Tensor& tokens, const torch::Tensor& targets) {
  auto x = hidden(tokens);
  // Chunked: the [B*T, V] logits are never held at once (ops/cross_entropy.h).
  auto chunked_loss = [&] {
    return ops::linear_cross_entropy(x.reshape({-1, x.size(-1)}), head_weight(), {},
                                     targets.reshape({-1}));
  };
  if (split_parts() == 1) return chunked_loss();
  // A shard's mean, weighted to the sequences' mean over the context group (a collective:
  // every shard computes it). A shard without a scored target (a synthetic task's answers lie
  // in some shards) adds zero, connected to the graph so that its backward runs the blocks'
  // exchanges too.
  const double scored = (targets != -100).sum().item<double>();
  const double weight = split_mean_weight(scored);
  if (scored == 0) return x.sum() * 0;
  return chunked_loss() * weight;
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
    if (kv.value().dim() < 2 || name.rfind("wte.", 0) == 0 || name.rfind("wpe.", 0) == 0 ||
        name.rfind("token_type_emb.", 0) == 0 || name == "cls_token")
      continue;
    matmul_params += static_cast<double>(kv.value().numel());
  }
  // A decoder tied to wte (GPT's LM head, BERT's MLM head) multiplies by it once more.
  const bool tied_decoder =
      cfg.tie_embeddings && (cfg.stack == "gpt" || (cfg.stack == "bert" && cfg.num_classes == 0));
  if (tied_decoder) matmul_params += static_cast<double>(cfg.vocab_size) * cfg.d_model;
  double attention_layers = 0;
  for (const auto& l : cfg.layers)
    if (l.type == "attention" || l.type == "primer") attention_layers += 1;
  return 6.0 * matmul_params + 12.0 * attention_layers * seq_len * cfg.d_model;
}

}  // namespace herd
