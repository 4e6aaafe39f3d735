// Synthetic tasks as one more data source: each task turns a seeded generator into one
// example (a row of inputs, its next-token targets and which targets are answers). The
// example sets, their order and resume live in synthetic_data.h; the tasks only generate.
//
// Token ids follow the references: safari's tasks (associative_recall, induction_head) sort
// their vocabulary as strings, so `.` is id 0, the `vocab_size - 2` ordinary tokens ids
// 1..vocab_size-2 and `=>` id vocab_size-1; mqar uses zoology's ids (keys [1, V/2), values
// [V/2, V)); passkey's are its own (kPasskey* below).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/hash.h"

namespace herd::data::synthetic {

// The ignore index of the cross-entropy (ops/cross_entropy.h): targets that carry no loss.
constexpr int64_t kIgnore = -100;

// passkey's vocabulary: the digits 0..9 are ids 0..9, then the marker that states the key,
// the marker that asks for it, and filler tokens from kPasskeyFirstFiller on.
constexpr int64_t kPasskeyStated = 10, kPasskeyAsked = 11, kPasskeyFirstFiller = 12;

struct Example {
  std::vector<int64_t> input, target;  // [T] each: target[t] follows input[t]
  std::vector<uint8_t> answer;         // [T]: 1 where target[t] is an answer
  int64_t group = 0;                   // passkey: the index of its depth
};

// The draws a task makes; outputs fixed by definition (splitmix64), not by a library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  int64_t below(int64_t n) { return static_cast<int64_t>(g_.below(static_cast<uint64_t>(n))); }
  double uniform() { return static_cast<double>(g_.next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // k distinct values of [lo, hi) in the order drawn (a partial Fisher-Yates).
  std::vector<int64_t> distinct(int64_t lo, int64_t hi, int64_t k);
  uint64_t next() { return g_.next(); }

 private:
  SplitMix64 g_;
};

class Generator {
 public:
  virtual ~Generator() = default;
  virtual int64_t row_len() const = 0;
  // Example number `index` of its split from its own generator (index picks passkey's depth).
  virtual void generate(Rng& rng, uint64_t index, Example& out) const = 0;
  // safari drops repeated examples within each split (and draws again); zoology does not.
  virtual bool distinct_examples() const { return false; }
  // Accuracy counts whole examples (passkey: every digit of the key) instead of answers.
  virtual bool whole_example_accuracy() const { return false; }
  // Names of the example groups with an accuracy of their own (passkey: "depth_0.25").
  virtual std::vector<std::string> group_names() const { return {}; }
};

std::unique_ptr<Generator> make_associative_recall(const SyntheticConfig& s);
std::unique_ptr<Generator> make_induction_head(const SyntheticConfig& s);
std::unique_ptr<Generator> make_mqar(const SyntheticConfig& s);
std::unique_ptr<Generator> make_passkey(const SyntheticConfig& s);
// By s.task (checked by check_spec first).
std::unique_ptr<Generator> make_generator(const SyntheticConfig& s);

// Example::input/target/answer sized for T tokens and cleared.
void reset_example(Example& e, int64_t T);
// input = tokens[0, T), target = tokens[1, T], no answers yet (tokens holds T + 1).
void shift_into(const std::vector<int64_t>& tokens, Example& e);

}  // namespace herd::data::synthetic
