// Document readers: delimited text, JSON lines (escapes, errors), compressed streams.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <fstream>

#include "core/error.h"
#include "data/text/text_source.h"
#include "test_data_util.h"

namespace {

using namespace herd::data::testing_util;

using herd::data::DocumentReader;
using herd::data::json_string_field;
using herd::data::TextSourceOptions;

std::vector<std::string> read_all(const std::vector<std::string>& paths,
                                  const std::string& delimiter = "") {
  TextSourceOptions opt;
  opt.doc_delimiter = delimiter;
  DocumentReader reader(paths, opt);
  std::vector<std::string> docs;
  std::string doc;
  while (reader.next(doc)) docs.push_back(doc);
  return docs;
}

TEST(DataTextSource, DelimitedText) {
  ScratchDir dir_scratch("delim");
  const std::string dir = dir_scratch.path();
  put_file(dir + "/a.txt", "first\nline two\n%\n\n%\nsecond  doc\n\n%\nthird\r\n% \n%");
  put_file(dir + "/b", "fourth");
  auto docs = read_all({dir + "/a.txt", dir + "/b"}, "%");
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0], "first\nline two");
  EXPECT_EQ(docs[1], "second  doc");  // blank line before the delimiter dropped
  EXPECT_EQ(docs[2], "third\n% ");    // CR stripped; "% " is not the delimiter
  EXPECT_EQ(docs[3], "fourth");
}

TEST(DataTextSource, EmptyDelimiterIsWholeFile) {
  ScratchDir dir_scratch("whole");
  const std::string dir = dir_scratch.path();
  put_file(dir + "/a.txt", "\n\nline one\n%\nline two\n\n");
  auto docs = read_all({dir + "/a.txt"});
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], "line one\n%\nline two");
}

TEST(DataTextSource, LongLinesAcrossBufferRefills) {
  ScratchDir dir_scratch("long");
  const std::string dir = dir_scratch.path();
  std::string big(200000, 'x');
  put_file(dir + "/a.txt", big + "\n%\n" + big.substr(0, 70000) + "y");
  auto docs = read_all({dir + "/a.txt"}, "%");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], big);
  EXPECT_EQ(docs[1], big.substr(0, 70000) + "y");
}

TEST(DataTextSource, FortunesFile) {
  const std::string path = "/usr/share/games/fortunes/fortunes";
  if (!herd::data::is_regular_file(path)) GTEST_SKIP() << "fortunes not installed";
  auto docs = read_all({path}, "%");
  EXPECT_GT(docs.size(), 100u);
  for (const auto& d : docs) {
    EXPECT_FALSE(d.empty());
    EXPECT_EQ(d.find("\n%\n"), std::string::npos);
  }
}

TEST(DataJson, EscapesAndSurrogates) {
  std::string out;
  ASSERT_TRUE(json_string_field(
      R"({"id": 7, "meta": {"text": "nested", "a": [1, -2.5e3, true, null, "x\"y"]},)"
      R"( "text": "a\"b\\c\/d\n\t\u00e9\u65e5\ud83d\ude00\u0041"})",
      "text", &out));
  EXPECT_EQ(out,
            "a\"b\\c/d\n\t\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80"
            "A");
  EXPECT_FALSE(json_string_field(R"({"other": "x"})", "text", &out));
  ASSERT_TRUE(json_string_field("  {\"text\":\"raw \xC3\xA9\"}  ", "text", &out));
  EXPECT_EQ(out, "raw \xC3\xA9");
}

TEST(DataJson, MalformedInputs) {
  std::string out;
  const char* bad[] = {
      R"({"text": "abc)",         R"({"text": "\ud83d"})",
      R"({"text": "\ude00"})",    R"({"text": "\u12g4"})",
      R"({"text": "\q"})",        R"({"text": 5})",
      R"({"text": "a"} extra)",   R"(["text"])",
      R"({"text": "a",})",        "{\"text\": \"tab\there\"}",
      R"({"a": 01, "text": ""})", R"({"a": tru})",
  };
  for (const char* line : bad)
    EXPECT_THROW(json_string_field(line, "text", &out), herd::Error) << line;
}

TEST(DataTextSource, JsonlDocumentsAndBadLine) {
  ScratchDir dir_scratch("jsonl");
  const std::string dir = dir_scratch.path();
  put_file(dir + "/a.jsonl",
           "{\"text\": \"one\\nline\"}\n\n{\"text\": \"\"}\n{\"id\":1,\"text\":\"two \\u00e9\"}\n");
  auto docs = read_all({dir + "/a.jsonl"});
  ASSERT_EQ(docs.size(), 2u);  // blank line and empty text skipped
  put_file(dir + "/bom.jsonl", "\xEF\xBB\xBF{\"text\": \"one\\nline\"}\r\n");
  EXPECT_EQ(read_all({dir + "/bom.jsonl"}), std::vector<std::string>{"one\nline"});
  EXPECT_EQ(docs[0], "one\nline");
  EXPECT_EQ(docs[1], "two \xC3\xA9");

  put_file(dir + "/bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"broken}\n");
  auto msg = error_of([&] { read_all({dir + "/bad.jsonl"}); });
  EXPECT_NE(msg.find("bad.jsonl:2:"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);

  put_file(dir + "/nofield.jsonl", "{\"body\": \"x\"}\n");
  msg = error_of([&] { read_all({dir + "/nofield.jsonl"}); });
  EXPECT_NE(msg.find("nofield.jsonl:1: no field \"text\""), std::string::npos) << msg;
}

TEST(DataTextSource, ZstdAndGzip) {
  ScratchDir dir_scratch("compressed");
  const std::string dir = dir_scratch.path();
  std::string plain;
  for (int i = 0; i < 3000; ++i) plain += "{\"text\": \"document " + std::to_string(i) + "\"}\n";

  std::string zst(ZSTD_compressBound(plain.size()), '\0');
  zst.resize(ZSTD_compress(zst.data(), zst.size(), plain.data(), plain.size(), 3));
  put_file(dir + "/a.jsonl.zst", zst);

  // gzip framing (windowBits 15 + 16), written as two members as `cat a.gz b.gz` would.
  auto gzip = [](const std::string& in) {
    z_stream z{};
    EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string out(deflateBound(&z, in.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  };
  size_t half = plain.find('\n', plain.size() / 2) + 1;
  put_file(dir + "/a.jsonl.gz", gzip(plain.substr(0, half)) + gzip(plain.substr(half)));

  for (const char* name : {"/a.jsonl.zst", "/a.jsonl.gz"}) {
    auto docs = read_all({dir + name});
    ASSERT_EQ(docs.size(), 3000u) << name;
    EXPECT_EQ(docs[0], "document 0");
    EXPECT_EQ(docs[2999], "document 2999");
  }
  put_file(dir + "/cut.jsonl.zst", zst.substr(0, zst.size() / 2));
  EXPECT_NE(error_of([&] { read_all({dir + "/cut.jsonl.zst"}); }).find("cut.jsonl.zst"),
            std::string::npos);
  put_file(dir + "/junk.jsonl.gz", "not gzip at all");
  EXPECT_NE(error_of([&] { read_all({dir + "/junk.jsonl.gz"}); }).find("bad gzip"),
            std::string::npos);
}

TEST(DataTextSource, MissingInput) {
  auto msg = error_of([] { herd::data::check_inputs_exist({"/nonexistent/herd.txt"}); });
  EXPECT_EQ(msg, "/nonexistent/herd.txt: input file does not exist");
}

}  // namespace
