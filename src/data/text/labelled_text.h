// Labelled text for sequence classification: jsonl with one object per line, e.g.
// {"text": "...", "label": "positive"} or a sentence pair {"text_a": ..., "text_b": ..., "label":
// 1}.
#pragma once

#include <string>
#include <vector>

namespace herd::data {

struct LabelledExample {
  std::string text;
  std::string pair;   // second sentence ("" when the data has no pairs)
  std::string label;  // as written: a string, or a number's JSON text
};

struct LabelledFields {
  std::string text = "text";
  std::string pair;  // "" : single sentences
  std::string label = "label";
};

// Every line of a jsonl file (blank lines skipped). Errors name file:line and the field.
std::vector<LabelledExample> read_labelled_jsonl(const std::string& path,
                                                 const LabelledFields& fields);

// The distinct labels, sorted (numerically when every label is an integer): class i is names[i].
std::vector<std::string> label_names(const std::vector<LabelledExample>& examples);

}  // namespace herd::data
