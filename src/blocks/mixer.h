// The sequence-mixer interface every block implements, and what a block is told when built.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "blocks/inference.h"
#include "blocks/sequence_split.h"
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

// Parameters a block trains with settings of their own, as safari and m2 tag them (`_optim`):
// those whose name inside the mixer starts with `prefix` join the optimizer group `group`
// (train/optimizer.h builds the groups; optimizer.groups in the config overrides them).
struct ParamGroupTag {
  std::string group;             // "ssm", "filter", "pos_emb"
  std::string prefix;            // "kernel.log_dt", "filter_fn.implicit_filter."
  std::optional<double> lr;      // unset: optimizer.lr
  std::optional<double> max_lr;  // the lr is at most this (H3: min(1e-3, optimizer.lr))
  double weight_decay = 0.0;
  // The mixer options that set lr / weight_decay ("filter_lr"); "" where the block's default
  // holds (herd config check says which).
  std::string lr_from = "", wd_from = "";
};

// The name when the config set that option, else "" (for ParamGroupTag's lr_from / wd_from).
inline std::string option_if_set(const std::set<std::string>& set_options, const char* name) {
  return set_options.count(name) ? name : "";
}

// [B, L, D] -> [B, L, D]. L may be anything in [1, max_seq_len], odd lengths included.
class SequenceMixerImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // The same over a right-padded batch: pad [B, L] bool, true at padding positions. The output
  // at real positions must not depend on the pads (BERT classification batches). The default
  // zeroes the pads' inputs and runs forward(): enough for a causal mixer, where right pads
  // come after every real position; bidirectional mixers override it.
  virtual torch::Tensor forward_padded(const torch::Tensor& x, const torch::Tensor& pad);
  // Generation (causal mixers; blocks/inference.h): a cache for `batch` sequences of up to
  // max_len positions, and step(), which takes the next T >= 1 positions [B, T, D] and returns
  // the mixer's output there, equal to forward() over the whole prefix. The defaults keep the
  // input history and rerun forward(); mixers with a state of their own override both.
  virtual std::shared_ptr<MixerCache> allocate_cache(int64_t batch, int64_t max_len,
                                                     const torch::TensorOptions& options);
  virtual torch::Tensor step(const torch::Tensor& x, MixerCache& cache);
  // Context parallelism (blocks/sequence_split.h): "" when forward() and backward() run on
  // shards of shard_length positions split over `parts` processes, else why not ("d_model 30
  // does not split into 4 channel groups"). The default: the block has no such path.
  virtual std::string context_parallel_refusal(int64_t parts, int64_t shard_length) const {
    (void)parts, (void)shard_length;
    return "has no context-parallel path";
  }
  // The block's own optimizer groups (none: every parameter takes the stack's defaults).
  virtual std::vector<ParamGroupTag> param_group_tags() const { return {}; }
};
using SequenceMixer = std::shared_ptr<SequenceMixerImpl>;

}  // namespace herd
