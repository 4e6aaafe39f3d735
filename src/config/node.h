// Typed, validated reading of one YAML mapping. Every getter records the key it read; finish()
// rejects any key nobody read. Errors carry file, line and the dotted path:
//   cfg.yaml:12 model.n_layer: expected positive integer, got "twelve"
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace herd::cfg {

// Bounds of a number; open ends are excluded. The defaults are unbounded.
struct Range {
  double lo = -1e300, hi = 1e300;
  bool lo_open = false, hi_open = false;
};

class ConfigMap {
 public:
  // node may be null/undefined (an absent section): every getter then returns its default.
  ConfigMap(YAML::Node node, std::string file, std::string path);

  int64_t get_int(const std::string& key, int64_t def, int64_t min = INT64_MIN,
                  int64_t max = INT64_MAX);
  double get_double(const std::string& key, double def, double min = -1e300, double max = 1e300);
  double get_number(const std::string& key, double def, const Range& range);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def);
  // One of `choices`; the error lists them.
  std::string get_choice(const std::string& key, const std::string& def,
                         const std::vector<std::string>& choices);
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& def);
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& def);
  // Required variants: absent key is an error.
  int64_t require_int(const std::string& key, int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  std::string require_string(const std::string& key);

  bool has(const std::string& key) const;
  // A nested mapping (absent -> empty map). Remember to call finish() on it too.
  ConfigMap child(const std::string& key);
  // A nested sequence of mappings (absent -> empty).
  std::vector<ConfigMap> child_list(const std::string& key);
  // The raw node, marked as read (for free-form sub-trees); a Null node when absent.
  YAML::Node raw(const std::string& key);

  // Throws on the first key that no getter read, listing the keys that were (the valid ones).
  void finish() const;

  // Error helpers with this map's location.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  std::string where(const std::string& key) const;  // "file:line path.key"
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

 private:
  std::optional<YAML::Node> lookup(const std::string& key);  // nullopt: absent or null
  std::string full(const std::string& key) const;

  YAML::Node node_;
  std::string file_;
  std::string path_;
  std::set<std::string> read_;
};

// Loads a YAML file into a node; a parse error becomes "file:line: YAML syntax error: ...".
YAML::Node load_yaml_file(const std::string& path);

// Applies "a.b.c=value" to the tree (value parsed as YAML scalar/flow). Creates missing maps.
// Marks overridden nodes so errors name "--set a.b.c" instead of a file line.
void apply_override(YAML::Node& root, const std::string& assignment);

// Serialise with keys in insertion order.
std::string to_yaml(const YAML::Node& node);

}  // namespace herd::cfg
