// Autoregressive sampling with temperature and top-k from a causal LM.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace herd {

struct SampleOptions {
  int64_t max_tokens = 64;
  double temperature = 0.8;  // 0: greedy
  int64_t top_k = 40;        // 0: full distribution
  uint64_t seed = 0;
  int64_t context = 0;      // longest context fed to the model (max_seq_len)
  int64_t stop_token = -1;  // stop after emitting this id (EOS); -1: never
};

// logits_fn maps tokens [1, T] to logits [1, T, V]. Returns only the new tokens. Uses its own
// generator, so sampling during training never perturbs the training RNG.
std::vector<int64_t> sample_tokens(
    const std::function<torch::Tensor(const torch::Tensor&)>& logits_fn,
    std::vector<int64_t> prompt, const SampleOptions& options);

}  // namespace herd
