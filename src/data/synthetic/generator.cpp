#include "data/synthetic/generator.h"

#include "core/error.h"

namespace herd::data::synthetic {

std::vector<int64_t> Rng::distinct(int64_t lo, int64_t hi, int64_t k) {
  std::vector<int64_t> pool(static_cast<size_t>(hi - lo));
  for (int64_t i = 0; i < hi - lo; ++i) pool[static_cast<size_t>(i)] = lo + i;
  for (int64_t i = 0; i < k; ++i)
    std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(i + below(hi - lo - i))]);
  pool.resize(static_cast<size_t>(k));
  return pool;
}

void reset_example(Example& e, int64_t T) {
  e.input.assign(static_cast<size_t>(T), 0);
  e.target.assign(static_cast<size_t>(T), 0);
  e.answer.assign(static_cast<size_t>(T), 0);
  e.group = 0;
}

void shift_into(const std::vector<int64_t>& tokens, Example& e) {
  const size_t T = tokens.size() - 1;
  reset_example(e, static_cast<int64_t>(T));
  for (size_t t = 0; t < T; ++t) {
    e.input[t] = tokens[t];
    e.target[t] = tokens[t + 1];
  }
}

std::unique_ptr<Generator> make_generator(const SyntheticConfig& s) {
  if (s.task == "associative_recall") return make_associative_recall(s);
  if (s.task == "induction_head") return make_induction_head(s);
  if (s.task == "mqar") return make_mqar(s);
  if (s.task == "passkey") return make_passkey(s);
  throw Error(
      str("data.synthetic.task: expected associative_recall|induction_head|mqar|passkey, "
          "got ",
          s.task));
}

}  // namespace herd::data::synthetic
