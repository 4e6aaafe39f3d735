// The layer every stack (GPT, BERT, ViT) is built from: a registered sequence mixer and a
// position-wise MLP, with residuals and LayerNorms placed by model.norm:
//   pre  (GPT, ViT):            x = x + mixer(ln_1(x));  x = x + mlp(ln_2(x))
//   post (BERT):                x = ln_1(x + mixer(x));  x = ln_2(x + mlp(x))
//   post, mixer_residual false: m = mixer(x);            x = ln_2(m + mlp(m))      (M2-BERT)
// Parameter names h.<i>.{ln_1, mixer, ln_2, mlp} are the ones GPT checkpoints use.
// Every "x + f(...)" followed by a LayerNorm is one ops::add_layer_norm: pre-norm blocks hand
// the next block (or the final ln_f) a Residual whose last add is still pending.
#pragma once

#include <torch/torch.h>

#include "blocks/mixer.h"
#include "config/config.h"
#include "layers/mlp.h"
#include "layers/monarch_mlp.h"

namespace herd {

// The residual stream between blocks: its value is sum + pending. A pre-norm block leaves
// its MLP branch pending so that the next LayerNorm adds it in the same pass.
struct Residual {
  torch::Tensor sum;
  torch::Tensor pending;  // undefined: the stream is `sum`
  torch::Tensor value() const { return pending.defined() ? sum + pending : sum; }
};

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& cfg, const MixerSpec& mixer, const MixerContext& ctx);
  // One block over the stream; pre-norm returns {x + mixer(..), mlp(..)} still to be added,
  // post-norm a settled stream.
  // pad [B, L] (optional, right padding): true at padding positions; the mixer keeps real
  // positions independent of them (SequenceMixerImpl::forward_padded).
  Residual forward_stream(const Residual& x, const torch::Tensor& pad = {});
  // The same on a plain tensor, the result added up.
  torch::Tensor forward(const torch::Tensor& x);
  // Cached generation (pre-norm): the block at the next T positions x [B, T, D], the mixer
  // reading and extending its cache (blocks/inference.h).
  torch::Tensor step(const torch::Tensor& x, MixerCache& cache);
  // The residual dropout of a branch (identity in eval or at p = 0).
  torch::Tensor drop(const torch::Tensor& branch);

  bool post_norm = false, mixer_residual = true;
  double resid_dropout = 0.0;          // each branch before its residual add, in training
  torch::nn::LayerNorm ln_1{nullptr};  // absent when !mixer_residual
  torch::nn::LayerNorm ln_2{nullptr};
  SequenceMixer mixer;
  // Exactly one of these is set; either is registered as "mlp".
  Mlp mlp{nullptr};
  MonarchGluMlp glu_mlp{nullptr};  // mlp: m2_glu, residual and norm are the block's
};
TORCH_MODULE(Block);

// The mixer `spec` names, with its options checked against the block's own keys.
SequenceMixer build_mixer(const MixerSpec& spec, const MixerContext& ctx);
torch::nn::LayerNorm layer_norm(const ModelConfig& cfg);
// model.embd_dropout on the embeddings' output (after BERT's and ViT's embedding LayerNorm).
torch::Tensor embedding_dropout(const torch::Tensor& x, const ModelConfig& cfg, bool training);
// cfg.n_layer blocks of the plan cfg.layers; causal for GPT, bidirectional for BERT/ViT.
torch::nn::ModuleList make_blocks(const ModelConfig& cfg, bool causal);
// The blocks in order, one forward_stream call each. The result may hold a pending add: finish
// it with final_norm (pre-norm stacks) or Residual::value().
Residual run_blocks(const torch::nn::ModuleList& blocks, Residual x, const torch::Tensor& pad = {});
// ln(stream value) with the pending add fused into the norm.
torch::Tensor final_norm(const Residual& x, const torch::nn::LayerNorm& ln);
// GPT-2 init of the gelu/squared-ReLU MLPs (fc2 scaled by 1/sqrt(2 n_layer)); m2_glu keeps
// BlockdiagLinear's own init, as in M2.
void init_block_mlps(const torch::nn::ModuleList& blocks, const ModelConfig& cfg);

}  // namespace herd
