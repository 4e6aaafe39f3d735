// GPT-style causal LM: token embedding (+ learned positions), N pre-norm blocks of
// (sequence mixer, MLP) with residuals, final norm, LM head tied to the embedding.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "blocks/mixer.h"
#include "config/config.h"
#include "layers/mlp.h"
#include "layers/monarch_mlp.h"

namespace herd {

class GptBlockImpl : public torch::nn::Module {
 public:
  GptBlockImpl(const ModelConfig& cfg, const MixerSpec& mixer, const MixerContext& ctx);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  SequenceMixer mixer;
  // Exactly one of these is set; either is registered as "mlp".
  Mlp mlp{nullptr};
  MonarchGluMlp glu_mlp{nullptr};  // mlp: m2_glu, without its own residual and post-LN
};
TORCH_MODULE(GptBlock);

class GptImpl : public torch::nn::Module {
 public:
  explicit GptImpl(const ModelConfig& cfg);
  // tokens [B, T] int64 -> logits [B, T, V]
  torch::Tensor forward(const torch::Tensor& tokens);
  // Mean cross-entropy of next-token targets [B, T].
  torch::Tensor loss(const torch::Tensor& tokens, const torch::Tensor& targets);

  ModelConfig cfg;
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear lm_head{nullptr};  // only when embeddings are not tied
};
TORCH_MODULE(Gpt);

// The resolved per-layer mixer names, e.g. {"h3", "attention", "h3", ...}.
std::vector<std::string> layer_plan(const ModelConfig& cfg);
int64_t parameter_count(torch::nn::Module& model);
// Training FLOPs per token: 6 * (matmul parameters) + attention scores 12 * layers * T * D.
double flops_per_token(const ModelConfig& cfg, torch::nn::Module& model, int64_t seq_len);

}  // namespace herd
