// libFuzzer target: the safetensors reader (JSON header, dtypes, offsets, tensor bytes).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto st = herd::io::parse_safetensors(bytes, "fuzz.safetensors");
    (void)st;
  } catch (const herd::Error&) {
  }
  return 0;
}
