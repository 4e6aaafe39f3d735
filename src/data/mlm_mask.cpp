#include "data/mlm_mask.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "core/error.h"

namespace herd::data {

MaskedBatch mask_tokens(const torch::Tensor& tokens, double rate, const MaskSpecial& special,
                        uint64_t seed) {
  HERD_CHECK(rate > 0 && rate < 1, "mlm mask rate: expected a number in (0, 1), got ", rate);
  HERD_CHECK(tokens.scalar_type() == torch::kLong, "mlm mask: tokens must be int64, got ",
             tokens.scalar_type());
  const int64_t V = special.vocab_size;
  HERD_CHECK(special.mask_id >= 0 && special.mask_id < V, "mlm mask: mask id ", special.mask_id,
             " outside the vocabulary [0, ", V, ")");
  // Random replacements are drawn from the ordinary tokens only.
  std::vector<int64_t> excluded = special.never_mask;
  excluded.push_back(special.mask_id);
  std::vector<int64_t> ordinary;
  ordinary.reserve(static_cast<size_t>(V));
  for (int64_t id = 0; id < V; ++id)
    if (std::find(excluded.begin(), excluded.end(), id) == excluded.end()) ordinary.push_back(id);
  HERD_CHECK(!ordinary.empty(), "mlm mask: every id of the vocabulary (", V, ") is special");

  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto cpu = tokens.to(torch::kCPU);
  auto eligible = torch::ones_like(cpu, torch::kBool);
  for (int64_t id : special.never_mask) eligible &= cpu != id;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto selected = (torch::rand(cpu.sizes(), gen, f64) < rate) & eligible;
  const auto action = torch::rand(cpu.sizes(), gen, f64);  // [0, .8) mask, [.8, .9) random
  const auto table = torch::tensor(ordinary, torch::kLong);
  const auto random_ids =
      table.index({torch::randint(static_cast<int64_t>(ordinary.size()), cpu.sizes(), gen,
                                  torch::TensorOptions().dtype(torch::kLong))});

  auto input = cpu.clone();
  input = torch::where(selected & (action < 0.8), torch::full_like(cpu, special.mask_id), input);
  input = torch::where(selected & (action >= 0.8) & (action < 0.9), random_ids, input);
  auto labels = torch::where(selected, cpu, torch::full_like(cpu, kNotMasked));
  return {input.to(tokens.device()), labels.to(tokens.device())};
}

}  // namespace herd::data
