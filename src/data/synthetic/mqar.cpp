// Multi-query associative recall as zoology's zoology/data/multiquery_ar.py (num_passes 1):
// num_kv_pairs distinct keys of [1, V/2) and distinct values of [V/2, V) as k0 v0 k1 v1 ...,
// then the query region of seq_len - 2*pairs slots where key i sits at slot 2*gap_i, the gaps
// distinct in [0, space) drawn by the power law p(g) ~ a * (g+1)^(a-1); every other slot is 0,
// or a random token of [0, V) with random_non_queries. The answer at each query position is
// its key's value (the next input token is not: loss and accuracy are at the queries only).
#include <cmath>

#include "data/synthetic/generator.h"

namespace herd::data::synthetic {
namespace {

class Mqar : public Generator {
 public:
  explicit Mqar(const SyntheticConfig& s)
      : vocab_(s.vocab_size),
        len_(s.seq_len),
        pairs_(s.num_kv_pairs),
        random_fill_(s.random_non_queries) {
    const int64_t space = (len_ - 2 * pairs_) / 2;
    for (int64_t g = 1; g <= space; ++g)
      gap_weight_.push_back(s.power_a * std::pow(static_cast<double>(g), s.power_a - 1));
  }
  int64_t row_len() const override { return len_; }

  void generate(Rng& rng, uint64_t, Example& out) const override {
    const int64_t half = vocab_ / 2, context = 2 * pairs_;
    const auto keys = rng.distinct(1, half, pairs_);
    const auto values = rng.distinct(half, vocab_, pairs_);
    const auto gaps = power_law_gaps(rng);
    reset_example(out, len_);
    for (int64_t i = 0; i < pairs_; ++i) {
      out.input[static_cast<size_t>(2 * i)] = keys[static_cast<size_t>(i)];
      out.input[static_cast<size_t>(2 * i + 1)] = values[static_cast<size_t>(i)];
    }
    for (int64_t t = 0; t < len_; ++t) out.target[static_cast<size_t>(t)] = kIgnore;
    for (int64_t i = 0; i < pairs_; ++i) {
      const auto at = static_cast<size_t>(context + 2 * gaps[static_cast<size_t>(i)]);
      out.input[at] = keys[static_cast<size_t>(i)];
      out.target[at] = values[static_cast<size_t>(i)];
      out.answer[at] = 1;
    }
    if (random_fill_)
      for (int64_t t = context; t < len_; ++t)
        if (out.input[static_cast<size_t>(t)] == 0)
          out.input[static_cast<size_t>(t)] = rng.below(vocab_);
  }

 private:
  // pairs distinct gaps, each drawn by the remaining weights (numpy's choice without
  // replacement: the same law, in the order drawn).
  std::vector<int64_t> power_law_gaps(Rng& rng) const {
    std::vector<double> w = gap_weight_;
    double total = 0;
    for (double x : w) total += x;
    std::vector<int64_t> gaps;
    for (int64_t i = 0; i < pairs_; ++i) {
      double u = rng.uniform() * total;
      size_t g = 0;
      while (g + 1 < w.size() && (w[g] == 0 || u >= w[g])) u -= w[g++];
      while (w[g] == 0) --g;  // rounding at the far end: the last gap still open
      gaps.push_back(static_cast<int64_t>(g));
      total -= w[g];
      w[g] = 0;
    }
    return gaps;
  }

  int64_t vocab_, len_, pairs_;
  bool random_fill_;
  std::vector<double> gap_weight_;  // of gaps 0..space-1
};

}  // namespace

std::unique_ptr<Generator> make_mqar(const SyntheticConfig& s) {
  return std::make_unique<Mqar>(s);
}

}  // namespace herd::data::synthetic
