// BERT-style bidirectional encoder (Devlin et al. 2019; M2-BERT, m2@7d359e8c
// bert/src/bert_layers.py): token + learned position + token-type embeddings, N blocks of any
// registered mixer run bidirectionally (src/models/block.h; post-norm by default), then
//   num_classes == 0: the MLM head  logits = LN(gelu(dense(h))) @ wte^T + bias   (tied decoder)
//   num_classes  > 0: a classifier  logits = classifier(tanh(pooler(h[:, 0] or mean(h))))
// Post-norm stacks put a LayerNorm after the embeddings (BERT's embeddings.LayerNorm); pre-norm
// ones a final ln_f instead.
#pragma once

#include <torch/torch.h>

#include <string>

#include "config/config.h"
#include "models/block.h"

namespace herd {

// BertLMPredictionHead: transform (dense, gelu, LN) and a decoder whose weight is the word
// embedding (tie_embeddings) or its own, plus an output-only bias.
class MlmHeadImpl : public torch::nn::Module {
 public:
  explicit MlmHeadImpl(const ModelConfig& cfg);
  // hidden [..., D], the word embedding (V, D) -> logits [..., V]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& word_embedding);
  // LN(gelu(dense(hidden))), what the decoder multiplies.
  torch::Tensor transform(const torch::Tensor& hidden);
  // The decoder's weight (V, D): its own, or the word embedding when tied.
  const torch::Tensor& decoder_weight(const torch::Tensor& word_embedding) const;

  torch::nn::Linear dense{nullptr};    // (D, D) + bias
  torch::nn::LayerNorm ln{nullptr};    // (D)
  torch::nn::Linear decoder{nullptr};  // (V, D), only when embeddings are not tied
  torch::Tensor bias;                  // (V)
};
TORCH_MODULE(MlmHead);

struct MlmResult {
  torch::Tensor loss;   // mean cross-entropy over the masked positions (0 when there are none)
  int64_t correct = 0;  // masked positions whose argmax is the label
  int64_t count = 0;    // masked positions (labels != -100)
};

constexpr int64_t kIgnoreLabel = -100;

class BertImpl : public torch::nn::Module {
 public:
  explicit BertImpl(const ModelConfig& cfg);
  // tokens [B, T] int64 (T <= max_seq_len), token_types [B, T] (default: all 0) -> [B, T, D]
  // pad [B, T] (optional): true at right-padding positions; the output at real positions is
  // then what the unpadded sequence gives (attention masks them, m2 zeroes them before its long
  // convolutions, primer before its dconv).
  torch::Tensor encode(const torch::Tensor& tokens, const torch::Tensor& token_types = {},
                       const torch::Tensor& pad = {});
  // hidden [..., D] -> [..., V]; needs the MLM head (num_classes == 0)
  torch::Tensor mlm_logits(const torch::Tensor& hidden);
  // labels [B, T]: the original token where masked, kIgnoreLabel elsewhere. The vocabulary
  // projection runs on the masked positions only.
  MlmResult mlm(const torch::Tensor& input, const torch::Tensor& labels);
  // -> logits [B, num_classes]; needs num_classes > 0
  // pool: mean averages the real positions only.
  torch::Tensor classify(const torch::Tensor& tokens, const torch::Tensor& token_types = {},
                         const torch::Tensor& pad = {});

  ModelConfig cfg;
  torch::nn::Embedding wte{nullptr};             // (V, D)
  torch::nn::Embedding wpe{nullptr};             // (max_seq_len, D), positional: learned
  torch::nn::Embedding token_type_emb{nullptr};  // (type_vocab_size, D) when > 0
  torch::nn::LayerNorm ln_emb{nullptr};          // norm: post
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};     // norm: pre
  MlmHead mlm_head{nullptr};              // num_classes == 0
  torch::nn::Linear pooler{nullptr};      // (D, D) + bias, tanh; num_classes > 0
  torch::nn::Linear classifier{nullptr};  // (num_classes, D) + bias
};
TORCH_MODULE(Bert);

// Copies a pretrained BERT's encoder (everything but the heads: embeddings, blocks, norms)
// from a checkpoint's model.pt into `model`, by parameter name; the pooler and classifier
// keep their fresh init and the file's MLM head is ignored. Throws one line naming the
// missing or mismatched tensors.
void load_pretrained_encoder(Bert& model, const std::string& model_pt_path);

}  // namespace herd
