// GPT-style causal LM: token embedding (+ learned positions), N pre-norm blocks of
// (sequence mixer, MLP) with residuals, final norm, LM head tied to the embedding.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "models/block.h"

namespace herd {

// The GPT layer is the shared pre-norm block (src/models/block.h).
using GptBlockImpl = BlockImpl;
using GptBlock = Block;

// Generation state: one cache per layer and the positions consumed (blocks/inference.h).
struct InferenceState {
  std::vector<std::shared_ptr<MixerCache>> layers;
  int64_t length = 0, max_len = 0;
};

class GptImpl : public torch::nn::Module {
 public:
  explicit GptImpl(const ModelConfig& cfg);
  // tokens [B, T] int64 -> logits [B, T, V] (generation, evaluation by position)
  torch::Tensor forward(const torch::Tensor& tokens);
  // Mean cross-entropy of next-token targets [B, T], by chunks of rows: the full logits are
  // never formed (ops::linear_cross_entropy).
  torch::Tensor loss(const torch::Tensor& tokens, const torch::Tensor& targets);
  // tokens [B, T] -> the final norm's output [B, T, D], what the LM head multiplies.
  torch::Tensor hidden(const torch::Tensor& tokens);
  // Caches for `batch` sequences of up to max_len (<= max_seq_len) tokens, in the model's
  // dtype and device.
  InferenceState start_inference(int64_t batch, int64_t max_len);
  // Logits [B, T, V] of the next T tokens [B, T], as forward() over the whole prefix gives
  // them, computed from the caches (a prompt is one call, then one token per call).
  torch::Tensor step(const torch::Tensor& tokens, InferenceState& state);
  // The LM head's weight (V, D): lm_head's, or wte's when tied.
  const torch::Tensor& head_weight() const;

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
// Any stack's module. Training FLOPs per token (per patch for vit): 6 * (matmul parameters)
// + attention scores 12 * layers * T * D.
double flops_per_token(const ModelConfig& cfg, torch::nn::Module& model, int64_t seq_len);

}  // namespace herd
