// Labelled jsonl for classification: fields, numeric and string labels, pairs, errors.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/text/labelled_text.h"
#include "fixtures.h"

namespace {

using herd::data::LabelledFields;
using herd::data::read_labelled_jsonl;

TEST(LabelledText, ReadsStringAndNumericLabelsAndPairs) {
  const std::string dir = herd::test::temp_dir("labelled");
  herd::test::write_text(dir + "/a.jsonl",
                         "{\"text\": \"one\", \"label\": 10}\n\n"
                         "{\"label\": 2, \"text\": \"two \\\"q\\\"\"}\n"
                         "{\"text\": \"three\", \"label\": -1, \"extra\": [1, {\"x\": null}]}\n");
  auto ex = read_labelled_jsonl(dir + "/a.jsonl", LabelledFields{});
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[1].text, "two \"q\"");
  EXPECT_EQ(ex[1].label, "2");
  // Integer labels sort numerically, not as strings.
  EXPECT_EQ(herd::data::label_names(ex), (std::vector<std::string>{"-1", "2", "10"}));

  herd::test::write_text(dir + "/p.jsonl",
                         "{\"a\": \"x\", \"b\": \"y\", \"y\": \"pos\"}\n"
                         "{\"a\": \"z\", \"b\": \"w\", \"y\": \"neg\"}\n");
  auto pairs = read_labelled_jsonl(dir + "/p.jsonl", LabelledFields{"a", "b", "y"});
  EXPECT_EQ(pairs[0].pair, "y");
  EXPECT_EQ(herd::data::label_names(pairs), (std::vector<std::string>{"neg", "pos"}));
}

TEST(LabelledText, ErrorsNameFileAndLine) {
  const std::string dir = herd::test::temp_dir("labelled-bad");
  auto expect_error = [&](const std::string& body, const std::string& needle) {
    herd::test::write_text(dir + "/bad.jsonl", body);
    try {
      read_labelled_jsonl(dir + "/bad.jsonl", LabelledFields{});
      FAIL() << "accepted: " << body;
    } catch (const herd::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(dir + "/bad.jsonl:2"), std::string::npos) << what;
      EXPECT_NE(what.find(needle), std::string::npos) << what;
    }
  };
  expect_error("{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\"}\n", "\"label\"");
  expect_error("{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": [1]}\n", "label");
  expect_error("{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1\n", "column");
  EXPECT_THROW(read_labelled_jsonl(dir + "/missing.jsonl", LabelledFields{}), herd::Error);
}

}  // namespace
