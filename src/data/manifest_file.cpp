#include "data/manifest_file.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "data/file_util.h"

namespace herd::data {

std::string shortest_double(double v) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

cfg::ConfigMap open_manifest(const std::string& file, const ManifestKind& kind) {
  HERD_CHECK(is_regular_file(file), file, ": no ", kind.what, " (expected the output directory of ",
             kind.made_by, ")");
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    throw Error(str(file, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
  HERD_CHECK(root.IsMap(), file, ": expected a YAML mapping (a herd ", kind.what, ")");
  cfg::ConfigMap top(root, file, "");
  const std::string format = top.require_string("format");
  if (format != kind.format) {
    const bool other = kind.other_format && format == kind.other_format;
    top.fail("format", str("\"", format, "\" (expected ", kind.format,
                           other ? str("; ", kind.other_hint, ")") : std::string(")")));
  }
  const int64_t version = top.require_int("version");
  if (version != kind.version)
    top.fail("version", str(version, " (this herd reads version ", kind.version, ")"));
  return top;
}

}  // namespace herd::data
