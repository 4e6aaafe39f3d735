// libFuzzer target: the config loader (YAML text -> parse_config). A user's mistake must be a
// herd::Error; any other exception, a crash or a sanitizer report is a bug.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return 0;  // load_config reports these as "file:line: YAML syntax error"
  }
  try {
    herd::parse_config(root, "fuzz.yaml");
  } catch (const herd::Error&) {
  }
  return 0;
}
