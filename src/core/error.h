// herd's error type: one line a user can act on (file, field, expected form). Library code
// throws; only the CLI turns an Error into a message on stderr and a non-zero exit.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace herd {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Concatenates anything streamable: str("step ", 3, ": ", loss).
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

}  // namespace herd

// Throws herd::Error with the message when cond is false.
#define HERD_CHECK(cond, ...)                                   \
  do {                                                          \
    if (!(cond)) throw ::herd::Error(::herd::str(__VA_ARGS__)); \
  } while (0)
