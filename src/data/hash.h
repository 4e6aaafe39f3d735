// Small, portable hashes and a PRNG whose outputs are fixed by definition (not by a standard
// library's implementation), so that data order and identities match across machines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herd::data {

// FNV-1a 64-bit over bytes, continuing from `h` (start with kFnvOffset).
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
inline uint64_t fnv1a64(std::string_view bytes, uint64_t h = kFnvOffset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// 16 lower-case hex digits.
inline std::string hex64(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = digits[v & 0xF];
  return out;
}

// The splitmix64 finaliser: a bijective mix of a 64-bit value.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// splitmix64 generator (Steele, Lea, Flood 2014).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  // Uniform in [0, n) without modulo bias (rejection of the short last bucket). n > 0.
  uint64_t below(uint64_t n) {
    uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    while (true) {
      uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }

 private:
  uint64_t state_;
};

}  // namespace herd::data
