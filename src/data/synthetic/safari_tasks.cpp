// safari's in-context tasks (src/dataloaders/synthetics.py at HazyResearch/safari@02220c6):
// associative recall (num_keys 1, allow_dot False) and induction head (induction_len 1, one
// trigger). Ids: `.` 0, ordinary tokens 1..n (n = vocab_size - 2, in string order), `=>` n+1.
// Each example is the reference's token sequence S; the row is input S[:-1], target S[1:],
// and its answer is the last target (safari's test set masks every other one).
#include "data/synthetic/generator.h"
#include "data/synthetic/spec.h"

namespace herd::data::synthetic {
namespace {

class AssociativeRecall : public Generator {
 public:
  explicit AssociativeRecall(const SyntheticConfig& s)
      : n_(s.vocab_size - 2), pairs_(s.seq_len / 2), row_(synthetic::row_len(s)) {}
  int64_t row_len() const override { return row_; }
  bool distinct_examples() const override { return true; }

  // Keys are the first half of the ordinary tokens, values the second; a fresh key -> value
  // map per example (values drawn with replacement), seq_len / 2 pairs with keys drawn with
  // replacement, then `=>`, a key present in the context (a first draw over every key, drawn
  // again among the present ones when absent) and its value.
  void generate(Rng& rng, uint64_t, Example& out) const override {
    const int64_t keys = n_ / 2, values = n_ - keys;
    std::vector<int64_t> value_of(static_cast<size_t>(keys));
    for (auto& v : value_of) v = 1 + keys + rng.below(values);
    std::vector<int64_t> tokens, present;  // present: keys in order of first appearance
    std::vector<uint8_t> seen(static_cast<size_t>(keys), 0);
    for (int64_t i = 0; i < pairs_; ++i) {
      const int64_t k = rng.below(keys);
      tokens.push_back(1 + k);
      tokens.push_back(value_of[static_cast<size_t>(k)]);
      if (!seen[static_cast<size_t>(k)]) present.push_back(k);
      seen[static_cast<size_t>(k)] = 1;
    }
    int64_t q = rng.below(keys);
    if (!seen[static_cast<size_t>(q)])
      q = present[static_cast<size_t>(rng.below(static_cast<int64_t>(present.size())))];
    tokens.push_back(n_ + 1);  // =>
    tokens.push_back(1 + q);
    tokens.push_back(value_of[static_cast<size_t>(q)]);
    shift_into(tokens, out);
    out.answer.back() = 1;
  }

 private:
  int64_t n_, pairs_, row_;
};

class InductionHead : public Generator {
 public:
  explicit InductionHead(const SyntheticConfig& s) : n_(s.vocab_size - 2), len_(s.seq_len) {}
  int64_t row_len() const override { return len_ + 1; }
  bool distinct_examples() const override { return true; }

  // seq_len ordinary tokens and `=>`; `=>` also overwrites position p in [0, seq_len - 2),
  // and the token after it (p + 1) is appended: the answer.
  void generate(Rng& rng, uint64_t, Example& out) const override {
    std::vector<int64_t> tokens(static_cast<size_t>(len_ + 2));
    for (int64_t t = 0; t < len_; ++t) tokens[static_cast<size_t>(t)] = 1 + rng.below(n_);
    const int64_t prefix = n_ + 1;
    tokens[static_cast<size_t>(len_)] = prefix;
    rng.uniform();  // safari's one-trigger coin: a draw whatever it shows
    const int64_t p = rng.below(len_ - 2);
    tokens[static_cast<size_t>(p)] = prefix;
    tokens[static_cast<size_t>(len_ + 1)] = tokens[static_cast<size_t>(p + 1)];
    shift_into(tokens, out);
    out.answer.back() = 1;
  }

 private:
  int64_t n_, len_;
};

}  // namespace

std::unique_ptr<Generator> make_associative_recall(const SyntheticConfig& s) {
  return std::make_unique<AssociativeRecall>(s);
}
std::unique_ptr<Generator> make_induction_head(const SyntheticConfig& s) {
  return std::make_unique<InductionHead>(s);
}

}  // namespace herd::data::synthetic
