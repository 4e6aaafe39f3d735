// The common head of herd's dataset manifests (text and image): the file must exist, parse as
// a YAML mapping and carry the expected `format` and `version`; each error names the file and
// the field. The caller reads the rest through the returned map and calls finish() on it.
#pragma once

#include <cstdint>
#include <string>

#include "config/node.h"

namespace herd::data {

struct ManifestKind {
  const char* what;     // "dataset manifest", "image dataset manifest"
  const char* made_by;  // "herd prepare text"
  const char* format;   // the `format` value
  int64_t version;      // the only `version` this herd reads
  // Another herd format and what to say of it ("herd-dataset": "this is a text dataset").
  const char* other_format = nullptr;
  const char* other_hint = nullptr;
};

// The shortest decimal that reads back as the same double ("0.05", not yaml-cpp's
// "0.050000000000000003"), so loaders see exactly the values prepare computed.
std::string shortest_double(double v);

cfg::ConfigMap open_manifest(const std::string& file, const ManifestKind& kind);

}  // namespace herd::data
