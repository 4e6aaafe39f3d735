// Passkey retrieval (the long-context check of Mohtashami & Jaggi's landmark attention, as
// users run it by hand): a repeating filler text, the key (key_len random digits) stated once
// at a depth of it, and at the end the question and the key. Tokens: digits 0..9, the
// "the pass key is" marker, the "what is the pass key?" marker, filler tokens cycling
// kPasskeyFirstFiller..V-1 by position. Example i takes depth depths[i % depths.size()]: 0
// states the key at the start of the filler, 1 at its end. The answers are the key's digits
// after the question; an example counts as recalled when all of them are right.
#include <cmath>
#include <cstdio>

#include "data/synthetic/generator.h"

namespace herd::data::synthetic {
namespace {

class Passkey : public Generator {
 public:
  explicit Passkey(const SyntheticConfig& s)
      : vocab_(s.vocab_size), len_(s.seq_len), key_len_(s.key_len), depths_(s.depths) {}
  int64_t row_len() const override { return len_; }
  bool whole_example_accuracy() const override { return true; }
  std::vector<std::string> group_names() const override {
    if (depths_.size() < 2) return {};
    std::vector<std::string> names;
    for (double d : depths_) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "depth_%g", d);
      names.emplace_back(buf);
    }
    return names;
  }

  void generate(Rng& rng, uint64_t index, Example& out) const override {
    const int64_t T = len_, k = key_len_, body = T - k;  // tokens before the question
    const int64_t fillers = vocab_ - kPasskeyFirstFiller;
    std::vector<int64_t> tokens(static_cast<size_t>(T + 1));
    for (int64_t t = 0; t < body; ++t)
      tokens[static_cast<size_t>(t)] = kPasskeyFirstFiller + t % fillers;
    std::vector<int64_t> key(static_cast<size_t>(k));
    for (auto& d : key) d = rng.below(10);
    const size_t group = static_cast<size_t>(index % depths_.size());
    const int64_t start =
        std::llround(depths_[group] * static_cast<double>(body - (k + 1)));  // body >= k + 1
    tokens[static_cast<size_t>(start)] = kPasskeyStated;
    tokens[static_cast<size_t>(body)] = kPasskeyAsked;
    for (int64_t i = 0; i < k; ++i) {
      tokens[static_cast<size_t>(start + 1 + i)] = key[static_cast<size_t>(i)];
      tokens[static_cast<size_t>(body + 1 + i)] = key[static_cast<size_t>(i)];
    }
    shift_into(tokens, out);
    for (int64_t t = body; t < T; ++t) out.answer[static_cast<size_t>(t)] = 1;
    out.group = static_cast<int64_t>(group);
  }

 private:
  int64_t vocab_, len_, key_len_;
  std::vector<double> depths_;
};

}  // namespace

std::unique_ptr<Generator> make_passkey(const SyntheticConfig& s) {
  return std::make_unique<Passkey>(s);
}

}  // namespace herd::data::synthetic
