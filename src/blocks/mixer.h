// The sequence-mixer interface every block implements, and what a block is told when built.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "blocks/inference.h"
#include "config/node.h"

namespace herd {

// Everything a mixer may depend on besides its own options.
struct MixerContext {
  int64_t d_model = 0;
  int64_t n_head = 1;
  int64_t max_seq_len = 0;  // l_max for implicit filters / kernels
  bool causal = true;       // GPT: true; BERT/ViT: false
  int64_t layer_index = 0;
  int64_t n_layer = 1;
};

// [B, L, D] -> [B, L, D]. L may be anything in [1, max_seq_len], odd lengths included.
class SequenceMixerImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // Generation (causal mixers; blocks/inference.h): a cache for `batch` sequences of up to
  // max_len positions, and step(), which takes the next T >= 1 positions [B, T, D] and returns
  // the mixer's output there, equal to forward() over the whole prefix. The defaults keep the
  // input history and rerun forward(); mixers with a state of their own override both.
  virtual std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                                     const torch::TensorOptions& options);
  virtual torch::Tensor step(const torch::Tensor& x, MixerCache& cache);
};
using SequenceMixer = std::shared_ptr<SequenceMixerImpl>;

}  // namespace herd
