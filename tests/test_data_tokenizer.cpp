// SentencePiece training on the Debian fortunes corpus, encode/decode, identity, errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "data/text/text_source.h"
#include "data/text/tokenizer.h"
#include "test_data_util.h"

namespace {

using namespace herd::data::testing_util;

using herd::data::DocumentReader;
using herd::data::kBosId;
using herd::data::kEosId;
using herd::data::kPadId;
using herd::data::kUnkId;
using herd::data::TextSourceOptions;
using herd::data::tokenizer_identity;
using herd::data::TokenizerTrainOptions;
using herd::data::train_tokenizer;

const char* kFortunes = "/usr/share/games/fortunes/";

std::vector<std::string> fortune_files(std::initializer_list<const char*> names) {
  std::vector<std::string> out;
  for (const char* n : names) out.push_back(std::string(kFortunes) + n);
  return out;
}

TokenizerTrainOptions fortune_options() {
  TokenizerTrainOptions opt;
  opt.source.doc_delimiter = "%";
  opt.max_sentences = 3000;
  return opt;
}

class Tokenizer : public testing::Test {
 protected:
  void SetUp() override {
    if (!herd::data::is_regular_file(std::string(kFortunes) + "fortunes"))
      GTEST_SKIP() << "Debian fortunes not installed";
  }
  // One BPE model shared by the tests of this process.
  static const std::string& bpe_model() {
    static const std::string prefix = [] {
      static ScratchDir shared("tok_shared");
      std::string p = shared / "bpe";
      train_tokenizer(fortune_files({"fortunes", "computers", "cookie"}), 512, "bpe", p,
                      fortune_options());
      return p;
    }();
    return prefix;
  }
};

TEST_F(Tokenizer, TrainEncodeDecodeRoundTrip) {
  const std::string prefix = bpe_model();
  ASSERT_TRUE(herd::data::is_regular_file(prefix + ".model"));
  ASSERT_TRUE(herd::data::is_regular_file(prefix + ".vocab"));
  auto tok = herd::data::Tokenizer::load(prefix + ".model");
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.pad_id(), kPadId);
  EXPECT_EQ(tok.unk_id(), kUnkId);
  EXPECT_EQ(tok.bos_id(), kBosId);
  EXPECT_EQ(tok.eos_id(), kEosId);

  // Every document of an unseen file decodes back to itself, whitespace included.
  TextSourceOptions src;
  src.doc_delimiter = "%";
  DocumentReader reader({std::string(kFortunes) + "humorists"}, src);
  std::string doc;
  size_t docs = 0, bytes = 0, tokens = 0;
  while (reader.next(doc)) {
    auto ids = tok.encode(doc);
    for (int id : ids) ASSERT_TRUE(id > kEosId && id < 512) << id;
    ASSERT_EQ(tok.decode(ids), doc);
    ++docs;
    bytes += doc.size();
    tokens += ids.size();
  }
  EXPECT_GT(docs, 50u);
  EXPECT_LT(tokens * 10, bytes * 7);  // BPE merges do compress English

  const std::string odd =
      "  two spaces\n\ttab, caf\xC3\xA9, \xE6\x97\xA5\xE6\x9C\xAC, \xF0\x9F\x98\x80 ";
  EXPECT_EQ(tok.decode(tok.encode(odd)), odd);  // byte fallback: no <unk>
  EXPECT_EQ(tok.piece(kEosId), "</s>");

  // The vocab file lists the pieces in id order, reserved ones first.
  std::string vocab = bytes_of(prefix + ".vocab");
  EXPECT_EQ(vocab.rfind("<pad>\t0\n<unk>\t0\n<s>\t0\n</s>\t0\n", 0), 0u) << vocab.substr(0, 80);
}

TEST_F(Tokenizer, TrainingIsDeterministicAndIdentityTracksBytes) {
  ScratchDir dir_scratch("det");
  const std::string dir = dir_scratch.path();
  auto files = fortune_files({"fortunes", "kids"});
  train_tokenizer(files, 400, "bpe", dir + "/a", fortune_options());
  train_tokenizer(files, 400, "bpe", dir + "/b", fortune_options());
  EXPECT_EQ(bytes_of(dir + "/a.model"), bytes_of(dir + "/b.model"));
  auto a = herd::data::Tokenizer::load(dir + "/a.model");
  auto b = herd::data::Tokenizer::load(dir + "/b.model");
  EXPECT_EQ(a.identity(), b.identity());
  EXPECT_EQ(a.identity().size(), 16u);
  EXPECT_EQ(a.identity().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(tokenizer_identity(dir + "/a.model"), a.identity());

  train_tokenizer(files, 420, "bpe", dir + "/c", fortune_options());
  EXPECT_NE(herd::data::Tokenizer::load(dir + "/c.model").identity(), a.identity());
}

TEST_F(Tokenizer, UnigramAndLongDocuments) {
  ScratchDir dir_scratch("uni");
  const std::string dir = dir_scratch.path();
  // No delimiter: each whole file (100+ KB) is one document, cut into sentences at newlines.
  TokenizerTrainOptions opt;
  train_tokenizer(fortune_files({"fortunes", "definitions"}), 512, "unigram", dir + "/u", opt);
  auto tok = herd::data::Tokenizer::load(dir + "/u.model");
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.eos_id(), kEosId);
  const std::string text = "A visit to a strange place will bring fresh work.\n  -- fortune";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
}

TEST_F(Tokenizer, MaxSentencesCapsTrainingInput) {
  ScratchDir dir_scratch("cap");
  const std::string dir = dir_scratch.path();
  auto files = fortune_files({"fortunes", "computers"});
  TokenizerTrainOptions few = fortune_options();
  few.max_sentences = 40;
  train_tokenizer(files, 400, "bpe", dir + "/few", few);
  train_tokenizer(files, 400, "bpe", dir + "/all", fortune_options());
  EXPECT_NE(bytes_of(dir + "/few.model"), bytes_of(dir + "/all.model"));
}

TEST_F(Tokenizer, Errors) {
  ScratchDir dir_scratch("err");
  const std::string dir = dir_scratch.path();
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const herd::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message([&] {
              herd::data::Tokenizer::load(dir + "/none.model");
            }).find("none.model: cannot open tokenizer model"),
            std::string::npos);
  std::ofstream(dir + "/junk.model") << "definitely not a protobuf";
  EXPECT_NE(message([&] {
              herd::data::Tokenizer::load(dir + "/junk.model");
            }).find("junk.model: not a SentencePiece model"),
            std::string::npos);
  auto files = fortune_files({"fortunes"});
  EXPECT_NE(message([&] {
              train_tokenizer(files, 512, "wordpiece", dir + "/x");
            }).find("expected bpe or unigram"),
            std::string::npos);
  EXPECT_NE(message([&] {
              train_tokenizer({dir + "/missing.txt"}, 512, "bpe", dir + "/x");
            }).find("missing.txt: input file does not exist"),
            std::string::npos);
  // Far more pieces than the text can make: SentencePiece's refusal becomes one line.
  std::ofstream(dir + "/tiny.txt") << "tiny corpus";
  auto msg = message([&] { train_tokenizer({dir + "/tiny.txt"}, 5000, "unigram", dir + "/x"); });
  EXPECT_NE(msg.find("tokenizer training failed"), std::string::npos) << msg;
  EXPECT_FALSE(herd::data::is_regular_file(dir + "/x.model"));

  auto tok = herd::data::Tokenizer::load(bpe_model() + ".model");
  EXPECT_THROW(tok.decode({5, 512}), herd::Error);
  EXPECT_THROW(tok.decode({-1}), herd::Error);
}

}  // namespace
