// `herd export`: a checkpoint's weights as model.safetensors (herd's own parameter and buffer
// names, float32 unless asked otherwise), its resolved config as config.json and its
// tokenizer, a layout any safetensors reader loads (data/formats/export.md).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace herd::ckpt {

// Writes out/model.safetensors, out/config.json and out/tokenizer.model (when the checkpoint
// has one). Returns the number of tensors written.
int64_t export_checkpoint(const std::string& checkpoint, const std::string& out);

// JSON text of a YAML tree: maps and sequences as objects and arrays; scalars that read as
// booleans, numbers or null become those, anything else a string.
std::string to_json(const YAML::Node& node);

}  // namespace herd::ckpt
