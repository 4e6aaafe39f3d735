#include "data/text/mlm_mask.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "core/error.h"

namespace herd::data {
namespace {

// The excluded ids inside the vocabulary, sorted and distinct; checks the arguments.
std::vector<int64_t> excluded_ids(const torch::Tensor& tokens, double rate,
                                  const MaskSpecial& special) {
  HERD_CHECK(rate > 0 && rate < 1, "mlm mask rate: expected a number in (0, 1), got ", rate);
  HERD_CHECK(tokens.scalar_type() == torch::kLong, "mlm mask: tokens must be int64, got ",
             tokens.scalar_type());
  const int64_t V = special.vocab_size;
  HERD_CHECK(special.mask_id >= 0 && special.mask_id < V, "mlm mask: mask id ", special.mask_id,
             " outside the vocabulary [0, ", V, ")");
  std::vector<int64_t> excluded = special.never_mask;
  excluded.push_back(special.mask_id);
  std::sort(excluded.begin(), excluded.end());
  excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
  excluded.erase(std::remove_if(excluded.begin(), excluded.end(),
                                [V](int64_t id) { return id < 0 || id >= V; }),
                 excluded.end());
  HERD_CHECK(V > static_cast<int64_t>(excluded.size()), "mlm mask: every id of the vocabulary (", V,
             ") is special");
  return excluded;
}

// Per position: u_select and u_action uniform in [0, 1), r uniform in [0, #ordinary).
struct Draws {
  torch::Tensor u_select, u_action, r;
};

// Draws from one generator in a fixed order: select, action, replacement.
void draw(Draws& d, at::Generator& gen, int64_t ordinary) {
  d.u_select.uniform_(0, 1, gen);
  d.u_action.uniform_(0, 1, gen);
  d.r.random_(0, ordinary, gen);
}

Draws empty_draws(at::IntArrayRef sizes) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  return {torch::empty(sizes, f64), torch::empty(sizes, f64), torch::empty(sizes, torch::kLong)};
}

MaskedBatch corrupt(const torch::Tensor& tokens, const torch::Tensor& cpu, const Draws& d,
                    double rate, const MaskSpecial& special, const std::vector<int64_t>& excluded) {
  auto eligible = torch::ones_like(cpu, torch::kBool);
  for (int64_t id : special.never_mask) eligible &= cpu != id;
  const auto selected = (d.u_select < rate) & eligible;
  // The r-th ordinary id: r stepped over each excluded id at or below it (ascending order).
  auto random_ids = d.r.clone();
  for (int64_t id : excluded) random_ids += (random_ids >= id).to(torch::kLong);
  auto input = torch::where(selected & (d.u_action < 0.8),  // [0, .8) mask, [.8, .9) random
                            torch::full_like(cpu, special.mask_id), cpu);
  input = torch::where(selected & (d.u_action >= 0.8) & (d.u_action < 0.9), random_ids, input);
  auto labels = torch::where(selected, cpu, torch::full_like(cpu, kNotMasked));
  return {input.to(tokens.device()), labels.to(tokens.device())};
}

}  // namespace

MaskedBatch mask_tokens(const torch::Tensor& tokens, double rate, const MaskSpecial& special,
                        uint64_t seed) {
  const auto excluded = excluded_ids(tokens, rate, special);
  const auto cpu = tokens.to(torch::kCPU).contiguous();
  Draws d = empty_draws(cpu.sizes());
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  draw(d, gen, special.vocab_size - static_cast<int64_t>(excluded.size()));
  return corrupt(tokens, cpu, d, rate, special, excluded);
}

MaskedBatch mask_rows(const torch::Tensor& tokens, double rate, const MaskSpecial& special,
                      const std::vector<uint64_t>& row_seeds) {
  const auto excluded = excluded_ids(tokens, rate, special);
  HERD_CHECK(tokens.dim() == 2 && tokens.size(0) == static_cast<int64_t>(row_seeds.size()),
             "mlm mask: tokens ", tokens.sizes(), " need one seed per row, got ", row_seeds.size());
  const auto cpu = tokens.to(torch::kCPU).contiguous();
  Draws all = empty_draws(cpu.sizes());
  const int64_t ordinary = special.vocab_size - static_cast<int64_t>(excluded.size());
  for (int64_t i = 0; i < cpu.size(0); ++i) {
    Draws row{all.u_select[i], all.u_action[i], all.r[i]};
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(row_seeds[static_cast<size_t>(i)]);
    draw(row, gen, ordinary);
  }
  return corrupt(tokens, cpu, all, rate, special, excluded);
}

}  // namespace herd::data
