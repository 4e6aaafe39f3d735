// libFuzzer target: the token shard reader (header checks, then every token read).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/text/shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/herd-fuzz-shard-" + std::to_string(::getpid()) + ".bin";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    herd::data::ShardReader reader(path);
    std::vector<int64_t> out(reader.size());
    if (reader.size() > 0) reader.copy(0, reader.size(), out.data());
    volatile int64_t sink = 0;
    for (uint64_t i = 0; i < reader.size(); ++i) sink = sink + reader[i];
  } catch (const herd::Error&) {
  }
  return 0;
}
