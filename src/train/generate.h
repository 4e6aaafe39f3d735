// Autoregressive sampling (temperature, top-k, top-p) from a causal LM, either with the
// model's per-layer caches (GptImpl::step: the prompt is prefilled once, then one step per
// token) or by recomputing the whole context for every token.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "models/gpt.h"

namespace herd {

struct SampleOptions {
  int64_t max_tokens = 64;
  double temperature = 0.8;  // 0: greedy
  int64_t top_k = 40;        // 0: full distribution
  double top_p = 1.0;        // nucleus: the smallest set of likeliest tokens with mass >= top_p
  uint64_t seed = 0;
  int64_t context = 0;      // longest context fed to the model (max_seq_len)
  int64_t stop_token = -1;  // stop after emitting this id (EOS); -1: never
};

// Sees each new token as it is chosen; returning false stops the sampling (a stop string).
using TokenCallback = std::function<bool(int64_t token)>;

// The next token from one row of logits [V] (float32 on CPU), with the options' temperature,
// top-k and top-p; greedy at temperature 0.
int64_t pick_token(torch::Tensor logits, const SampleOptions& options, at::Generator& gen);

// logits_fn maps tokens [1, T] to logits [1, T, V]. Returns only the new tokens. Uses its own
// generator, so sampling during training never perturbs the training RNG.
std::vector<int64_t> sample_tokens(
    const std::function<torch::Tensor(const torch::Tensor&)>& logits_fn,
    std::vector<int64_t> prompt, const SampleOptions& options, const TokenCallback& on_token = {});

// The same choices from the model's caches: identical tokens to sample_tokens() with
// logits_fn = model.forward while the context fits (the caches give the same logits). When
// it is full, the caches restart on the newest half of the context window.
std::vector<int64_t> sample_tokens_cached(GptImpl& model, std::vector<int64_t> prompt,
                                          const SampleOptions& options,
                                          const TokenCallback& on_token = {});

}  // namespace herd
