// Vision Transformer (Dosovitskiy et al. 2021) over any registered mixer run bidirectionally:
//   x = patch_embed(images) (a stride-p convolution: one D-vector per p x p patch, row-major)
//   [class token; x] + wpe (learned positions, num_patches (+1) rows)
//   blocks (src/models/block.h, pre-norm by default), ln_f
//   logits = head(x[:, 0] (pool: cls) or mean over patches (pool: mean))
// The mixers see a sequence of max_seq_len = num_patches (+1) tokens, e.g. M2's l_max.
#pragma once

#include <torch/torch.h>

#include "config/config.h"
#include "models/block.h"

namespace herd {

class VitImpl : public torch::nn::Module {
 public:
  explicit VitImpl(const ModelConfig& cfg);
  // images [B, channels, image_size, image_size] float -> logits [B, num_classes]
  torch::Tensor forward(const torch::Tensor& images);

  ModelConfig cfg;
  int64_t num_patches = 0;
  torch::nn::Conv2d patch_embed{nullptr};  // weight (D, C, p, p), bias (D), stride p
  torch::Tensor cls_token;                 // (1, 1, D), pool: cls
  torch::nn::Embedding wpe{nullptr};       // (max_seq_len, D), positional: learned
  torch::nn::LayerNorm ln_emb{nullptr};    // norm: post
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};  // norm: pre
  torch::nn::Linear head{nullptr};     // (num_classes, D) + bias
};
TORCH_MODULE(Vit);

}  // namespace herd
