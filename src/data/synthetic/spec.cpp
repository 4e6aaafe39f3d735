#include "data/synthetic/spec.h"

#include "core/error.h"
#include "data/synthetic/generator.h"

namespace herd::data::synthetic {
namespace {

std::optional<SpecProblem> problem(std::string key, std::string message) {
  return SpecProblem{std::move(key), std::move(message)};
}

// safari's tasks: `vocab_size - 2` ordinary tokens plus `=>` and `.`.
std::optional<SpecProblem> check_safari(const SyntheticConfig& s) {
  const bool recall = s.task == "associative_recall";
  const int64_t min_vocab = recall ? 4 : 3, min_len = recall ? 2 : 3;
  if (s.vocab_size < min_vocab)
    return problem(
        "vocab_size",
        str(s.task, " needs at least ", min_vocab, " tokens (`=>`, `.` and ",
            recall ? "a key and a value" : "an ordinary token", "), got ", s.vocab_size));
  if (s.seq_len < min_len)
    return problem("seq_len", str(s.task, " needs seq_len >= ", min_len,
                                  recall ? " (one key-value pair)" : " (a trigger before the end)",
                                  ", got ", s.seq_len));
  return std::nullopt;
}

// zoology's asserts, plus the distinct keys and values each example draws.
std::optional<SpecProblem> check_mqar(const SyntheticConfig& s) {
  if (s.seq_len % 2 != 0)
    return problem("seq_len", str("mqar needs an even seq_len (zoology), got ", s.seq_len));
  if (s.vocab_size <= s.seq_len)
    return problem("vocab_size", str("mqar needs vocab_size > seq_len ", s.seq_len,
                                     " (zoology), got ", s.vocab_size));
  if (4 * s.num_kv_pairs > s.seq_len)
    return problem("num_kv_pairs",
                   str("4 * num_kv_pairs must be at most seq_len ", s.seq_len,
                       " (the pairs and as many query slots), got ", s.num_kv_pairs));
  if (s.vocab_size / 2 - 1 < s.num_kv_pairs)
    return problem("vocab_size", str("too small for ", s.num_kv_pairs,
                                     " distinct keys in [1, vocab_size/2), got ", s.vocab_size));
  if (s.loss == "all")
    return problem("loss", "mqar trains on its query positions only (zoology); use answer or auto");
  return std::nullopt;
}

std::optional<SpecProblem> check_passkey(const SyntheticConfig& s) {
  if (s.vocab_size < kPasskeyFirstFiller + 1)
    return problem("vocab_size",
                   str("passkey needs at least ", kPasskeyFirstFiller + 1,
                       " tokens (10 digits, the two markers, a filler token), got ", s.vocab_size));
  if (s.seq_len < 2 * s.key_len + 1)
    return problem("seq_len", str("passkey needs seq_len >= 2 * key_len + 1 = ", 2 * s.key_len + 1,
                                  " (the key stated and asked for), got ", s.seq_len));
  for (double d : s.depths)
    if (!(d >= 0 && d <= 1)) return problem("depth", str("expected numbers in [0, 1], got ", d));
  if (s.depths.empty()) return problem("depth", "expected a number or a non-empty list in [0, 1]");
  return std::nullopt;
}

}  // namespace

int64_t row_len(const SyntheticConfig& s) {
  if (s.task == "associative_recall") return 2 * (s.seq_len / 2) + 2;
  if (s.task == "induction_head") return s.seq_len + 1;
  return s.seq_len;
}

std::string effective_loss(const SyntheticConfig& s) {
  if (s.loss != "auto") return s.loss;
  return s.task == "associative_recall" || s.task == "induction_head" ? "all" : "answer";
}

std::optional<SpecProblem> check_spec(const SyntheticConfig& s) {
  if (s.task == "associative_recall" || s.task == "induction_head") return check_safari(s);
  if (s.task == "mqar") return check_mqar(s);
  if (s.task == "passkey") return check_passkey(s);
  return std::nullopt;
}

}  // namespace herd::data::synthetic
