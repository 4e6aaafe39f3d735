// Inputs the fuzzer (scripts/fuzz.sh, tests/fuzz/) found crashing a reader, kept in
// tests/fuzz/crashes/: each must now be a herd::Error naming the file, nothing else.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// A tensor entry without "data_offsets": yaml-cpp threw InvalidNode past every handler.
TEST(SafetensorsFuzzRegressions, MissingDataOffsetsIsAHerdError) {
  const std::string path =
      std::string(HERD_SOURCE_DIR) + "/tests/fuzz/crashes/safetensors-crash-ef7bb1fa";
  const std::string bytes = read_bytes(path);
  ASSERT_FALSE(bytes.empty()) << path;
  try {
    herd::io::parse_safetensors(bytes, "crash.safetensors");
    FAIL() << "parsed a header without data_offsets";
  } catch (const herd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("crash.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("data_offsets"), std::string::npos) << e.what();
  }
}

// A tensor name that is itself a JSON object ({{"dtype": ...}: ...}): yaml-cpp's
// TypedBadConversion escaped when the key was read as a string.
TEST(SafetensorsFuzzRegressions, NonStringKeyIsAHerdError) {
  const std::string path =
      std::string(HERD_SOURCE_DIR) + "/tests/fuzz/crashes/safetensors-crash-c2d3bb84";
  const std::string bytes = read_bytes(path);
  ASSERT_FALSE(bytes.empty()) << path;
  try {
    herd::io::parse_safetensors(bytes, "crash.safetensors");
    FAIL() << "parsed a header whose key is an object";
  } catch (const herd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("crash.safetensors: header keys must be strings"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
