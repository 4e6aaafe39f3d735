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
  // Random replacements are drawn from the ordinary tokens only: the r-th ordinary id for r
  // uniform in [0, #ordinary), found by stepping over the sorted excluded ids in range.
  std::vector<int64_t> excluded = special.never_mask;
  excluded.push_back(special.mask_id);
  std::sort(excluded.begin(), excluded.end());
  excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
  excluded.erase(std::remove_if(excluded.begin(), excluded.end(),
                                [V](int64_t id) { return id < 0 || id >= V; }),
                 excluded.end());
  const int64_t ordinary = V - static_cast<int64_t>(excluded.size());
  HERD_CHECK(ordinary > 0, "mlm mask: every id of the vocabulary (", V, ") is special");

  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto cpu = tokens.to(torch::kCPU);
  auto eligible = torch::ones_like(cpu, torch::kBool);
  for (int64_t id : special.never_mask) eligible &= cpu != id;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto selected = (torch::rand(cpu.sizes(), gen, f64) < rate) & eligible;
  const auto action = torch::rand(cpu.sizes(), gen, f64);  // [0, .8) mask, [.8, .9) random
  auto random_ids =
      torch::randint(ordinary, cpu.sizes(), gen, torch::TensorOptions().dtype(torch::kLong));
  for (int64_t id : excluded) random_ids += (random_ids >= id).to(torch::kLong);  // ascending

  auto input = cpu.clone();
  input = torch::where(selected & (action < 0.8), torch::full_like(cpu, special.mask_id), input);
  input = torch::where(selected & (action >= 0.8) & (action < 0.9), random_ids, input);
  auto labels = torch::where(selected, cpu, torch::full_like(cpu, kNotMasked));
  return {input.to(tokens.device()), labels.to(tokens.device())};
}

}  // namespace herd::data
