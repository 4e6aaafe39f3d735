// BERT's masked-language-model corruption (Devlin et al. 2019, as HF's
// DataCollatorForLanguageModeling): each eligible token is selected with probability `rate`;
// a selected token becomes [MASK] 80% of the time, a random ordinary token 10%, and stays
// unchanged 10%. Labels hold the original token where selected and -100 elsewhere.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace herd::data {

struct MaskSpecial {
  int64_t mask_id = -1;
  int64_t vocab_size = 0;
  // Never selected, and never drawn as a random replacement (pad, cls, sep, bos, eos, ...).
  std::vector<int64_t> never_mask;
};

struct MaskedBatch {
  torch::Tensor input;   // like tokens, corrupted
  torch::Tensor labels;  // int64, the original token where selected, -100 elsewhere
};

constexpr int64_t kNotMasked = -100;

// tokens: int64 of any shape, on any device (drawn on the CPU; results on tokens' device).
// Deterministic for a seed. Throws herd::Error on a rate outside (0, 1) or bad ids.
MaskedBatch mask_tokens(const torch::Tensor& tokens, double rate, const MaskSpecial& special,
                        uint64_t seed);

// tokens [rows, T]: row i masked with its own generator, seeded row_seeds[i], exactly as
// mask_tokens(tokens[i:i+1], rate, special, row_seeds[i]); the rest runs over the whole batch.
MaskedBatch mask_rows(const torch::Tensor& tokens, double rate, const MaskSpecial& special,
                      const std::vector<uint64_t>& row_seeds);

}  // namespace herd::data
