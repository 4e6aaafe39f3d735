// What a `data.synthetic` config asks for, checked before anything is generated: the length
// of the rows the model sees, the effective loss, and the one-line problem of a combination
// the task cannot make (config.cpp reports it with the key's file and line).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace herd::data::synthetic {

// The tasks, in the order the schema lists them.
inline const char* const kTasks[] = {"associative_recall", "induction_head", "mqar", "passkey"};

// Tokens per row (input and target) for the task's seq_len:
//   associative_recall  2 * (seq_len / 2) + 2   (pairs, then `=>`, key; answer last)
//   induction_head      seq_len + 1             (tokens, then `=>`; answer last)
//   mqar, passkey       seq_len
int64_t row_len(const SyntheticConfig& s);

// `auto` resolved: all for safari's tasks (associative_recall, induction_head), answer for
// mqar and passkey.
std::string effective_loss(const SyntheticConfig& s);

// A key of data.synthetic and what is wrong with it.
struct SpecProblem {
  std::string key, message;
};
std::optional<SpecProblem> check_spec(const SyntheticConfig& s);

}  // namespace herd::data::synthetic
