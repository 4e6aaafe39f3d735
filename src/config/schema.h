// The run config's keys, each declared once: name, type (the C++ type of the struct member it
// fills), default (the member's initializer), range or choices, the stacks it applies to and
// one line of doc. Parsing, validation, the resolved dump and docs/config.md derive from it.
// Block (mixer) options are not here: each block validates its own (src/blocks).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "config/node.h"

namespace herd::cfg {

enum StackMask : unsigned { kGpt = 1, kBert = 2, kVit = 4, kAllStacks = 7 };
unsigned stack_bit(const std::string& stack);
std::string stack_names(unsigned mask);  // "bert|vit"

// Where a key's value lives in Config; monostate: a structured key (mapping or list) that
// config.cpp parses and dumps itself.
using Field = std::variant<std::monostate, int64_t& (*)(Config&), uint64_t& (*)(Config&),
                           double& (*)(Config&), bool& (*)(Config&), std::string& (*)(Config&)>;

struct Bound {
  double value;
  bool open;  // excluded from the range
};

struct KeySpec {
  std::string section;  // "model", "data.augment"
  std::string name;
  Field field;
  std::string doc;
  std::optional<Bound> lo, hi;
  std::vector<std::string> choices;
  unsigned stacks = kAllStacks;
  // A condition on the parsed config beyond the stack: the key is dumped only when it holds,
  // and with `reject` setting it otherwise is an error "only applies to <when_text>".
  bool (*when)(const Config&) = nullptr;
  std::string when_text;
  bool reject = false;
  // Structured keys: their form and default as the docs show them.
  std::string custom_type, custom_default;

  KeySpec(std::string section, std::string name, Field field, std::string doc);
  KeySpec& min(double v, bool open = false);
  KeySpec& max(double v, bool open = false);
  KeySpec& one_of(std::vector<std::string> c);
  KeySpec& only(unsigned stack_mask);
  KeySpec& applies(bool (*pred)(const Config&), std::string text, bool reject_otherwise);
  KeySpec& form(std::string type, std::string def);

  std::string path() const { return section + "." + name; }
  std::string type_name() const;     // integer | number | bool | string | one of ... | <custom>
  std::string default_text() const;  // from a default-constructed Config
  std::string range_text() const;    // "[0, 1)", ">= 1", "" when unbounded
};

// Every key of the run config in section order (the order of the resolved dump).
const std::vector<KeySpec>& config_keys();
// The sections in parse order ("model", "data", "data.augment", ...).
const std::vector<std::string>& config_sections();

// Reads one scalar key from its section's map into cfg (range, type and choice checked).
void read_key(ConfigMap& map, const KeySpec& key, Config& cfg);
// Checks the stack and `when` rules of every key set in the file; call after parsing.
void check_applies(const KeySpec& key, const ConfigMap& map, const Config& cfg);
// Whether the key belongs in the resolved dump of cfg.
bool dumped(const KeySpec& key, const Config& cfg);
// Writes one scalar key's effective value into its section node.
void dump_key(const KeySpec& key, const Config& cfg, YAML::Node& section);

// docs/config.md: every key, its type, default, range and meaning.
std::string config_docs_markdown();

}  // namespace herd::cfg
