#include "data/text/labelled_text.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>

#include "core/error.h"
#include "data/text/text_source.h"

namespace herd::data {
namespace {

bool is_integer(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<LabelledExample> read_labelled_jsonl(const std::string& path,
                                                 const LabelledFields& fields) {
  std::ifstream in(path);
  HERD_CHECK(in.good(), path, ": cannot open labelled data (expected jsonl with \"", fields.text,
             "\" and \"", fields.label, "\" fields)");
  std::vector<LabelledExample> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    LabelledExample e;
    auto need = [&](bool found, const std::string& field) {
      HERD_CHECK(found, path, ":", n, ": no field \"", field, "\" (expected {\"", fields.text,
                 "\": \"...\", \"", fields.label, "\": ...})");
    };
    try {
      need(json_string_field(line, fields.text, &e.text), fields.text);
      if (!fields.pair.empty()) need(json_string_field(line, fields.pair, &e.pair), fields.pair);
      need(json_scalar_field(line, fields.label, &e.label), fields.label);
    } catch (const Error& err) {
      const std::string what = err.what();
      if (what.rfind(path, 0) == 0) throw;
      throw Error(str(path, ":", n, ": ", what));
    }
    out.push_back(std::move(e));
  }
  HERD_CHECK(!out.empty(), path, ": no labelled examples (expected one JSON object per line)");
  return out;
}

std::vector<std::string> label_names(const std::vector<LabelledExample>& examples) {
  std::set<std::string> names;
  bool numeric = true;
  for (const auto& e : examples) {
    names.insert(e.label);
    numeric = numeric && is_integer(e.label);
  }
  std::vector<std::string> out(names.begin(), names.end());
  if (numeric)
    std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
      return std::strtoll(a.c_str(), nullptr, 10) < std::strtoll(b.c_str(), nullptr, 10);
    });
  return out;
}

}  // namespace herd::data
