// herd prepare text at scale: PILE-style .jsonl.zst and C4-style .json.gz inputs (many files,
// directories, globs), fixed shard sizes, thread-count byte identity, and bad input.
#include <gtest/gtest.h>

#include <map>

#include "data/hash.h"
#include "data/text/input_files.h"
#include "data/text/loader.h"
#include "data/text/prepare.h"
#include "data/text/tokenizer.h"
#include "fixtures.h"
#include "test_data_corpus.h"
#include "test_data_util.h"

namespace {

using namespace herd::data;
using namespace herd::data::testing_util;

// name -> "size:fnv1a64" of every file in dir.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& name : list_dir(dir)) {
    std::string bytes = bytes_of(join_path(dir, name));
    out[name] = std::to_string(bytes.size()) + ":" + hex64(fnv1a64(bytes));
  }
  return out;
}

// The fortunes as a small PILE + C4 tree, written once per process:
//   pile/00.jsonl.zst, pile/01.jsonl.zst           documents [0, a), [a, b)
//   c4/en/c4-train.0000{0,1}-of-00002.json.gz      documents [b, c), [c, n)
// plus files a directory walk must skip (checksums, hidden, nested non-corpus).
class DataScale : public testing::Test {
 protected:
  void SetUp() override {
    if (!is_regular_file(kFortuneDir + "fortunes")) GTEST_SKIP() << "fortunes not installed";
  }
  static const std::string& root() {
    static ScratchDir dir("scale_corpus");
    static const bool written = [] {
      const auto& docs = fortune_docs();
      const size_t n = docs.size(), a = n / 3, b = n / 2, c = 3 * n / 4;
      make_dirs(dir / "pile");
      make_dirs(dir / "c4/en/.cache");
      put_file(dir / "pile/00.jsonl.zst", zstd_compress(pile_lines(docs, 0, a), 3));
      put_file(dir / "pile/01.jsonl.zst", zstd_compress(pile_lines(docs, a, b), 19));
      put_file(dir / "c4/en/c4-train.00000-of-00002.json.gz", gzip_compress(c4_lines(docs, b, c)));
      put_file(dir / "c4/en/c4-train.00001-of-00002.json.gz", gzip_compress(c4_lines(docs, c, n)));
      put_file(dir / "c4/en/checksums.sha256", "not a corpus file\n");
      put_file(dir / "c4/en/.cache/stale.json.gz", "hidden: must not be read");
      return true;
    }();
    (void)written;
    return dir.path();
  }
  static std::vector<std::string> corpus_inputs() {
    return {root() + "/pile/*.jsonl.zst", root() + "/c4"};
  }
  static std::string tokenizer() { return herd::test::fortunes_dataset() + "/tokenizer.model"; }
  static PrepareOptions options(const std::string& out) {
    PrepareOptions o;
    o.inputs = corpus_inputs();
    o.tokenizer = tokenizer();
    o.out_dir = out;
    o.val_fraction = 0.05;
    o.shard_tokens = 100003;
    o.threads = 1;
    return o;
  }
};

TEST_F(DataScale, GlobsAndDirectoriesExpandInOrder) {
  auto files = expand_inputs(corpus_inputs());
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0], root() + "/pile/00.jsonl.zst");
  EXPECT_EQ(files[1], root() + "/pile/01.jsonl.zst");
  EXPECT_EQ(files[2], root() + "/c4/en/c4-train.00000-of-00002.json.gz");
  EXPECT_EQ(files[3], root() + "/c4/en/c4-train.00001-of-00002.json.gz");
  EXPECT_TRUE(is_corpus_file_name("a.txt.gz"));
  EXPECT_TRUE(is_corpus_file_name("a.json"));
  EXPECT_FALSE(is_corpus_file_name("a.sha256"));
  EXPECT_FALSE(is_corpus_file_name("fortunes"));

  // Every document comes back, in order, whatever the container.
  DocumentReader reader(files, TextSourceOptions{});
  std::vector<std::string> got;
  std::string doc;
  while (reader.next(doc)) got.push_back(doc);
  ASSERT_EQ(got.size(), fortune_docs().size());
  EXPECT_TRUE(got == fortune_docs());
  EXPECT_GT(got.size(), 10000u);

  auto msg = error_of([&] { expand_inputs({root() + "/pile/*.parquet"}); });
  EXPECT_EQ(msg, root() + "/pile/*.parquet: no file matches this pattern");
  msg = error_of([&] { expand_inputs({root() + "/c4", root() + "/c4/en/*.json.gz"}); });
  EXPECT_NE(msg.find("c4-train.00000-of-00002.json.gz: input file given twice"), std::string::npos)
      << msg;
  ScratchDir docs_only("scale_no_corpus");
  put_file(docs_only / "README.md", "no corpus here\n");
  put_file(docs_only / ".hidden.jsonl", "{\"text\": \"hidden\"}\n");
  msg = error_of([&] { expand_inputs({docs_only.path()}); });
  EXPECT_EQ(msg, docs_only.path() +
                     ": directory holds no *.txt, *.jsonl or *.json file (optionally .zst/.gz)");
  msg = error_of([&] { expand_inputs({root() + "/c*"}); });
  EXPECT_NE(msg.find("matches the directory"), std::string::npos) << msg;
}

TEST_F(DataScale, PreparesEveryTokenIntoFixedSizeShards) {
  ScratchDir out("scale_fixed");
  PrepareReport report;
  auto m = prepare_text(options(out.path()), &report);
  const auto& docs = fortune_docs();
  EXPECT_EQ(m.train_documents + m.val_documents, docs.size());
  EXPECT_EQ(report.documents, docs.size());
  EXPECT_EQ(m.inputs, expand_inputs(corpus_inputs()));  // the files read, not the patterns

  // An independent count: tokens of every document plus its EOS, per split.
  auto tok = Tokenizer::load(tokenizer());
  uint64_t train_tokens = 0, val_tokens = 0;
  for (size_t i = 0; i < docs.size(); ++i)
    (is_val_document(i, m.seed, 0.05) ? val_tokens : train_tokens) +=
        tok.encode(docs[i]).size() + 1;
  EXPECT_EQ(m.train_tokens(), train_tokens);
  EXPECT_EQ(m.val_tokens(), val_tokens);
  EXPECT_EQ(report.tokens, train_tokens + val_tokens);

  // Every shard but the last of a split holds exactly --shard-tokens (a prime, so no cut
  // lines up with a document end by luck); the header agrees with the manifest.
  for (const auto* shards : {&m.train_shards, &m.val_shards}) {
    uint64_t total = 0;
    for (const auto& s : *shards) total += s.tokens;
    ASSERT_EQ(shards->size(), (total + 100002) / 100003);
    for (size_t i = 0; i < shards->size(); ++i) {
      ShardReader r(m.shard_path((*shards)[i]));
      EXPECT_EQ(r.size(), (*shards)[i].tokens);
      if (i + 1 < shards->size()) {
        EXPECT_EQ(r.size(), 100003u) << (*shards)[i].file;
      } else {
        EXPECT_GT(r.size(), 0u);
        EXPECT_LE(r.size(), 100003u);
      }
    }
  }
  EXPECT_GE(m.train_shards.size(), 3u);
  EXPECT_EQ(m.train_shards[2].file, "train_000002.bin");
  EXPECT_EQ(load_manifest(out.path()).train_tokens(), train_tokens);
}

TEST_F(DataScale, ThreadCountDoesNotChangeBytes) {
  ScratchDir one("scale_t1"), three("scale_t3"), many("scale_t8");
  auto o = options(one.path());
  o.shard_tokens = 50000;
  prepare_text(o);
  o.out_dir = three.path();
  o.threads = 3;
  PrepareReport report;
  prepare_text(o, &report);
  EXPECT_EQ(report.threads, 3);
  auto first = snapshot(one.path());
  EXPECT_GT(first.size(), 10u);  // the corpus spans many 256 KiB chunks and shards
  EXPECT_EQ(snapshot(three.path()), first);
  o.out_dir = many.path();
  o.threads = 8;
  prepare_text(o);
  EXPECT_EQ(snapshot(many.path()), first);
}

// Reads of odd sizes (1 byte up) drain the decoders' internal buffers at every point, across
// zstd frames and gzip members.
TEST_F(DataScale, SmallReadsThroughDecoders) {
  ScratchDir dir("scale_small_reads");
  const auto& docs = fortune_docs();
  const std::string a = pile_lines(docs, 0, 3000), b = pile_lines(docs, 3000, 6000);
  put_file(dir / "x.jsonl.zst", zstd_compress(a, 19) + zstd_compress(b, 1));
  put_file(dir / "x.jsonl.gz", gzip_compress(a) + gzip_compress(b));
  for (const char* name : {"x.jsonl.zst", "x.jsonl.gz"}) {
    auto stream = open_byte_stream(dir / name);
    std::string got;
    std::vector<char> buf(5000);
    for (size_t k = 1;; k = k % 4999 + 1) {
      size_t n = stream->read(buf.data(), k);
      if (n == 0) break;
      ASSERT_LE(n, k);
      got.append(buf.data(), n);
    }
    EXPECT_EQ(got.size(), a.size() + b.size()) << name;
    EXPECT_TRUE(got == a + b) << name;
  }
}

// Truncated or corrupt compressed files and bad JSON lines through the CLI: a one-line error
// naming the file (and line), a non-zero exit, and no manifest.
TEST_F(DataScale, BadInputsFailWithFileAndLine) {
  ScratchDir dir("scale_bad");
  const std::string zst = bytes_of(root() + "/pile/00.jsonl.zst");
  const std::string gz = bytes_of(root() + "/c4/en/c4-train.00000-of-00002.json.gz");
  put_file(dir / "cut.jsonl.zst", zst.substr(0, zst.size() * 2 / 3));
  put_file(dir / "cut.json.gz", gz.substr(0, gz.size() * 2 / 3));
  // Bit rot in the CRC-32 of the trailer: every byte decodes, the check at the end fails.
  std::string rotten = gz;
  rotten[gz.size() - 7] = static_cast<char>(rotten[gz.size() - 7] ^ 0x10);
  put_file(dir / "rotten.json.gz", rotten);
  std::string bad = c4_lines(fortune_docs(), 0, 50);
  size_t third = bad.find('\n', bad.find('\n', bad.find('\n') + 1) + 1);  // end of line 3
  bad.insert(third - 1, ",");                                             // line 3 ends "...,}" now
  put_file(dir / "bad.json.gz", gzip_compress(bad));

  const std::string common = " --tokenizer " + tokenizer() + " --threads 2 --out ";
  auto run = [&](const std::string& input, const std::string& extra, std::string* out) {
    remove_tree(dir / "out");
    return herd::test::run_herd("prepare text --input " + input + extra + common + dir / "out",
                                out);
  };
  struct Case {
    const char* file;
    const char* expect;
  };
  for (const Case& c : {Case{"cut.jsonl.zst", ": truncated zstd stream (after line "},
                        Case{"cut.json.gz", ": truncated gzip stream (after line "},
                        Case{"rotten.json.gz", ": bad gzip data (incorrect data check)"},
                        Case{"bad.json.gz", ":3: bad JSON line: column "}}) {
    std::string out;
    EXPECT_NE(run(root() + "/pile/01.jsonl.zst " + dir / c.file, "", &out), 0) << c.file;
    EXPECT_NE(out.find("herd: error: " + dir / c.file + c.expect), std::string::npos)
        << c.file << ": " << out;
    const std::string error = out.substr(std::min(out.find("herd: error:"), out.size()));
    EXPECT_EQ(error.find('\n'), error.size() - 1) << "one line: " << out;
    EXPECT_FALSE(is_regular_file(dir / "out/manifest.yaml")) << c.file;
  }

  // Truncation is an error even with --skip-bad-lines: its documents would silently be lost.
  std::string out;
  EXPECT_NE(run(dir / "cut.jsonl.zst", " --skip-bad-lines", &out), 0) << out;
  // A bad line with the flag: counted, skipped, said; the other 49 documents are kept.
  ASSERT_EQ(run(dir / "bad.json.gz", " --skip-bad-lines --val-fraction 0", &out), 0) << out;
  EXPECT_NE(out.find("bad.json.gz:3: bad JSON line"), std::string::npos) << out;
  EXPECT_NE(out.find("skipped 1 bad JSON lines"), std::string::npos) << out;
  EXPECT_NE(out.find(" docs/s, "), std::string::npos) << out;
  EXPECT_NE(out.find(" tokens/s, "), std::string::npos) << out;
  auto m = load_manifest(dir / "out");
  EXPECT_EQ(m.train_documents, 49u);
  auto tok = Tokenizer::load(tokenizer());
  uint64_t kept_tokens = 0;
  for (size_t i = 0; i < 50; ++i)
    if (i != 2) kept_tokens += tok.encode(fortune_docs()[i]).size() + 1;  // line 3 = doc 2
  EXPECT_EQ(m.train_tokens(), kept_tokens);

  // A line without the configured field, and --field choosing another one.
  put_file(dir / "url.jsonl", "{\"url\": \"https://example.org\"}\n");
  ASSERT_NE(run(dir / "url.jsonl", "", &out), 0);
  EXPECT_NE(out.find("url.jsonl:1: no field \"text\""), std::string::npos) << out;
  ASSERT_EQ(run(dir / "url.jsonl", " --field url --val-fraction 0", &out), 0) << out;
  EXPECT_EQ(load_manifest(dir / "out").train_documents, 1u);
}

}  // namespace
