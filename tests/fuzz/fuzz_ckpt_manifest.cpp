// libFuzzer target: the checkpoint loader's first gate, ckpt::verify() (manifest.yaml parsed,
// every listed file's size and checksum checked), over a fuzzed manifest beside one real file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "ckpt/manifest.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = "/tmp/herd-fuzz-ckpt-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    std::FILE* f = std::fopen((d + "/model.pt").c_str(), "wb");
    std::fputs("weights", f);
    std::fclose(f);
    return d;
  }();
  std::FILE* f = std::fopen((dir + "/manifest.yaml").c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    (void)herd::ckpt::verify(dir);  // a reason string, never an exception
  } catch (const std::exception& e) {
    std::fprintf(stderr, "verify threw: %s\n", e.what());
    __builtin_trap();
  }
  return 0;
}
