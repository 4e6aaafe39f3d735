#include "models/vit.h"

namespace herd {

VitImpl::VitImpl(const ModelConfig& c) : cfg(c) {
  HERD_CHECK(cfg.stack == "vit", "model.stack: ", cfg.stack, " is not a ViT");
  HERD_CHECK(cfg.num_classes > 0, "model.num_classes: must be positive for a vit");
  HERD_CHECK(cfg.patch_size > 0 && cfg.image_size % cfg.patch_size == 0, "model.patch_size ",
             cfg.patch_size, " must divide model.image_size ", cfg.image_size);
  const int64_t side = cfg.image_size / cfg.patch_size;
  num_patches = side * side;
  const int64_t tokens = num_patches + (cfg.pool == "cls" ? 1 : 0);
  HERD_CHECK(cfg.max_seq_len == tokens, "model.max_seq_len ", cfg.max_seq_len,
             " must be the token count ", tokens, " (set by the config parser)");
  const int64_t D = cfg.d_model;
  patch_embed = register_module(
      "patch_embed",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(cfg.channels, D, cfg.patch_size).stride(cfg.patch_size)));
  if (cfg.pool == "cls") cls_token = register_parameter("cls_token", torch::zeros({1, 1, D}));
  if (cfg.positional == "learned") wpe = register_module("wpe", torch::nn::Embedding(tokens, D));
  if (cfg.norm == "post") ln_emb = register_module("ln_emb", layer_norm(cfg));
  h = register_module("h", make_blocks(cfg, /*causal=*/false));
  if (cfg.norm == "pre") ln_f = register_module("ln_f", layer_norm(cfg));
  head = register_module("head", torch::nn::Linear(D, cfg.num_classes));

  // The patch convolution keeps PyTorch's init; the rest as the GPT stack (GPT-2 init, or
  // the constructors' under model.init: torch).
  if (cfg.init != "gpt2") return;
  torch::NoGradGuard no_grad;
  if (cls_token.defined()) torch::nn::init::normal_(cls_token, 0.0, cfg.init_std);
  if (wpe) torch::nn::init::normal_(wpe->weight, 0.0, cfg.init_std);
  torch::nn::init::normal_(head->weight, 0.0, cfg.init_std);
  torch::nn::init::zeros_(head->bias);
  init_block_mlps(h, cfg);
}

torch::Tensor VitImpl::forward(const torch::Tensor& images) {
  HERD_CHECK(images.dim() == 4 && images.size(1) == cfg.channels &&
                 images.size(2) == cfg.image_size && images.size(3) == cfg.image_size,
             "vit: images must be [B, ", cfg.channels, ", ", cfg.image_size, ", ", cfg.image_size,
             "], got ", images.sizes());
  const int64_t B = images.size(0);
  auto x = patch_embed(images).flatten(2).transpose(1, 2);  // [B, num_patches, D]
  if (cls_token.defined()) x = torch::cat({cls_token.expand({B, 1, cfg.d_model}), x}, 1);
  if (wpe) x = x + wpe->weight;
  if (ln_emb) x = ln_emb(x);
  x = embedding_dropout(x, cfg, is_training());
  const Residual out = run_blocks(h, {x, {}});
  x = ln_f ? final_norm(out, ln_f) : out.value();
  return head(cls_token.defined() ? x.select(1, 0) : x.mean(1));
}

}  // namespace herd
