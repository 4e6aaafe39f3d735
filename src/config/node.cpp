#include "config/node.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace herd::cfg {
namespace {

// Nodes created by --set carry no file mark; we tag their location with this prefix.
std::string line_of(const YAML::Node& node, const std::string& file) {
  if (!node.IsDefined() || node.Mark().is_null()) return file;
  return str(file, ":", node.Mark().line + 1);
}

std::string shown(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsScalar()) return str("\"", node.Scalar(), "\"");
  if (node.IsSequence()) return "a list";
  return "a mapping";
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 0);
  if (errno != 0 || *end != '\0') {
    // Accept integral floats written as 1e6 or 3.0.
    double d = std::strtod(s.c_str(), &end);
    if (*end != '\0' || !std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9e18)
      return false;
    v = static_cast<long long>(d);
  }
  out = v;
  return true;
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (*end != '\0' || !std::isfinite(d)) return false;
  out = d;
  return true;
}

// Levenshtein distance, for "did you mean" on short key names.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

ConfigMap::ConfigMap(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap())
    throw Error(str(line_of(node_, file_), " ", path_.empty() ? "<root>" : path_,
                    ": expected a mapping, got ", shown(node_)));
}

std::string ConfigMap::full(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::string ConfigMap::where(const std::string& key) const {
  // Const lookup: a missing key yields an undefined node instead of a zombie that throws.
  const YAML::Node& map = node_;
  if (map.IsMap()) {
    const YAML::Node n = map[key];
    if (n.IsDefined()) return str(line_of(n, file_), " ", full(key));
  }
  return str(line_of(node_, file_), " ", full(key));
}

void ConfigMap::fail(const std::string& key, const std::string& message) const {
  throw Error(str(where(key), ": ", message));
}

bool ConfigMap::has(const std::string& key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

std::optional<YAML::Node> ConfigMap::lookup(const std::string& key) {
  read_.insert(key);
  const YAML::Node& map = node_;
  if (!map.IsMap()) return std::nullopt;
  YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return std::nullopt;
  return n;
}

int64_t ConfigMap::get_int(const std::string& key, int64_t def, int64_t min, int64_t max) {
  auto found = lookup(key);
  if (!found) return def;
  const YAML::Node& n = *found;
  int64_t v = 0;
  auto expected = [&] {
    if (min == 1 && max == INT64_MAX) return std::string("positive integer");
    if (min == 0 && max == INT64_MAX) return std::string("non-negative integer");
    if (max == INT64_MAX) return str("integer >= ", min);
    if (min == INT64_MIN) return str("integer <= ", max);
    return str("integer in [", min, ", ", max, "]");
  };
  if (!n.IsScalar() || !parse_int(n.Scalar(), v))
    fail(key, str("expected ", expected(), ", got ", shown(n)));
  if (v < min || v > max) fail(key, str("expected ", expected(), ", got ", v));
  return v;
}

double ConfigMap::get_double(const std::string& key, double def, double min, double max) {
  return get_number(key, def, Range{min, max, false, false});
}

double ConfigMap::get_number(const std::string& key, double def, const Range& r) {
  auto found = lookup(key);
  if (!found) return def;
  const YAML::Node& n = *found;
  double v = 0;
  if (!n.IsScalar() || !parse_double(n.Scalar(), v))
    fail(key, str("expected a number, got ", shown(n)));
  const bool below = r.lo_open ? v <= r.lo : v < r.lo;
  const bool above = r.hi_open ? v >= r.hi : v > r.hi;
  if (!below && !above) return v;
  const bool has_lo = r.lo > -1e300, has_hi = r.hi < 1e300;
  std::string expected;
  if (has_lo && has_hi)
    expected = str("in ", r.lo_open ? "(" : "[", r.lo, ", ", r.hi, r.hi_open ? ")" : "]");
  else if (has_lo)
    expected = str(r.lo_open ? "> " : ">= ", r.lo);
  else
    expected = str(r.hi_open ? "< " : "<= ", r.hi);
  fail(key, str("expected a number ", expected, ", got ", v));
}

bool ConfigMap::get_bool(const std::string& key, bool def) {
  auto found = lookup(key);
  if (!found) return def;
  const YAML::Node& n = *found;
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "False" || s == "no" || s == "off") return false;
  }
  fail(key, str("expected true or false, got ", shown(n)));
}

std::string ConfigMap::get_string(const std::string& key, const std::string& def) {
  auto found = lookup(key);
  if (!found) return def;
  const YAML::Node& n = *found;
  if (!n.IsScalar()) fail(key, str("expected a string, got ", shown(n)));
  return n.Scalar();
}

std::string ConfigMap::get_choice(const std::string& key, const std::string& def,
                                  const std::vector<std::string>& choices) {
  std::string v = get_string(key, def);
  for (const auto& c : choices)
    if (c == v) return v;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
  fail(key, str("expected one of ", list, ", got \"", v, "\""));
}

std::vector<std::string> ConfigMap::get_string_list(const std::string& key,
                                                    const std::vector<std::string>& def) {
  auto found = lookup(key);
  if (!found) return def;
  const YAML::Node& n = *found;
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence()) fail(key, str("expected a list of strings, got ", shown(n)));
  std::vector<std::string> out;
  for (const auto& item : n) {
    if (!item.IsScalar()) fail(key, str("expected a list of strings, got an item ", shown(item)));
    out.push_back(item.Scalar());
  }
  return out;
}

std::vector<int64_t> ConfigMap::get_int_list(const std::string& key,
                                             const std::vector<int64_t>& def) {
  auto found = lookup(key);
  if (!found) return def;
  const YAML::Node& n = *found;
  if (!n.IsSequence()) fail(key, str("expected a list of integers, got ", shown(n)));
  std::vector<int64_t> out;
  for (const auto& item : n) {
    int64_t v = 0;
    if (!item.IsScalar() || !parse_int(item.Scalar(), v))
      fail(key, str("expected a list of integers, got an item ", shown(item)));
    out.push_back(v);
  }
  return out;
}

int64_t ConfigMap::require_int(const std::string& key, int64_t min, int64_t max) {
  if (!has(key)) fail(key, "required integer is missing");
  return get_int(key, 0, min, max);
}

std::string ConfigMap::require_string(const std::string& key) {
  if (!has(key)) fail(key, "required string is missing");
  return get_string(key, "");
}

ConfigMap ConfigMap::child(const std::string& key) {
  auto found = lookup(key);
  return ConfigMap(found ? *found : YAML::Node(YAML::NodeType::Map), file_, full(key));
}

std::vector<ConfigMap> ConfigMap::child_list(const std::string& key) {
  auto found = lookup(key);
  std::vector<ConfigMap> out;
  if (!found) return out;
  const YAML::Node& n = *found;
  if (!n.IsSequence()) fail(key, str("expected a list of mappings, got ", shown(n)));
  for (size_t i = 0; i < n.size(); ++i) out.emplace_back(n[i], file_, str(full(key), "[", i, "]"));
  return out;
}

YAML::Node ConfigMap::raw(const std::string& key) {
  auto found = lookup(key);
  return found ? *found : YAML::Node();
}

void ConfigMap::finish() const {
  if (!node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.Scalar();
    if (read_.count(key)) continue;
    // The valid keys, and the closest one when it is a plausible typo.
    std::string valid, close;
    size_t best = key.size() >= 4 ? std::max<size_t>(2, key.size() / 3) : 1;
    for (const auto& k : read_) {
      valid += (valid.empty() ? "" : ", ") + k;
      const size_t d = edit_distance(k, key);
      if (d < best || (close.empty() && d == best)) best = d, close = k;
    }
    throw Error(str(line_of(kv.first, file_), " ", full(key), ": unknown key",
                    close.empty() ? "" : str(" (did you mean ", close, "?)"), "; ",
                    path_.empty() ? "the top level" : path_, " accepts: ", valid));
  }
}

YAML::Node load_yaml_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(str(path, ": cannot open config file"));
  try {
    YAML::Node root = YAML::Load(in);
    if (!root.IsDefined() || root.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) throw Error(str(path, ":1: expected a YAML mapping at the top level"));
    return root;
  } catch (const YAML::Exception& e) {
    throw Error(str(path, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
}

void apply_override(YAML::Node& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(str("--set ", assignment, ": expected key.path=value"));
  std::string path = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw Error(str("--set ", path, ": cannot parse value \"", value, "\": ", e.msg));
  }
  if (!parsed.IsDefined()) parsed = YAML::Node(value);
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw Error(str("--set ", path, ": empty path component"));
    parts.push_back(part);
  }
  // yaml-cpp nodes are handles: walk with reset() so we never rebind parents.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node cur = chain.back();
    if (cur[parts[i]].IsDefined() && !cur[parts[i]].IsNull() && !cur[parts[i]].IsMap())
      throw Error(str("--set ", path, ": ", parts[i], " is not a mapping"));
    if (!cur[parts[i]].IsDefined() || cur[parts[i]].IsNull())
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
    chain.push_back(cur[parts[i]]);
  }
  chain.back()[parts.back()] = parsed;
}

std::string to_yaml(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return std::string(out.c_str()) + "\n";
}

}  // namespace herd::cfg
