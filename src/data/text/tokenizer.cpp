#include "data/text/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "data/file_util.h"
#include "data/hash.h"

namespace herd::data {
namespace {

// Feeds documents to the trainer, cutting long ones at line breaks. Errors are kept and
// rethrown after Train() returns rather than thrown through SentencePiece's frames.
class DocumentSentences : public sentencepiece::SentenceIterator {
 public:
  DocumentSentences(const std::vector<std::string>& inputs, const TokenizerTrainOptions& opt)
      : reader_(inputs, opt.source),
        max_len_(static_cast<size_t>(opt.max_sentence_length)),
        max_sentences_(opt.max_sentences) {
    Next();
  }
  bool done() const override { return done_; }
  void Next() override {
    if (done_) return;
    try {
      advance();
    } catch (const Error& e) {
      error_ = e.what();
      done_ = true;
    }
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override {
    if (error_.empty()) return sentencepiece::util::Status();
    return sentencepiece::util::Status(sentencepiece::util::StatusCode::kInternal, error_);
  }
  const std::string& error() const { return error_; }
  int64_t sentences() const { return sentences_; }
  uint64_t documents() const { return reader_.documents(); }

 private:
  void advance() {
    if (max_sentences_ > 0 && sentences_ >= max_sentences_) {
      done_ = true;
      return;
    }
    if (rest_ >= doc_.size()) {
      if (!reader_.next(doc_)) {
        done_ = true;
        return;
      }
      rest_ = 0;
    }
    size_t len = doc_.size() - rest_;
    if (len > max_len_) {
      // Cut after the last newline that fits; a single over-long line is cut at a UTF-8
      // character boundary.
      size_t cut = doc_.rfind('\n', rest_ + max_len_ - 1);
      if (cut != std::string::npos && cut >= rest_) {
        len = cut - rest_ + 1;
      } else {
        len = max_len_;
        while (len > 1 && (static_cast<unsigned char>(doc_[rest_ + len]) & 0xC0) == 0x80) --len;
      }
    }
    value_.assign(doc_, rest_, len);
    rest_ += len;
    ++sentences_;
  }

  DocumentReader reader_;
  size_t max_len_;
  int64_t max_sentences_;
  std::string doc_;
  size_t rest_ = 0;
  std::string value_;
  std::string error_;
  bool done_ = false;
  int64_t sentences_ = 0;
};

}  // namespace

void train_tokenizer(const std::vector<std::string>& inputs, int64_t vocab_size,
                     const std::string& model_type, const std::string& out_prefix,
                     const TokenizerTrainOptions& options) {
  HERD_CHECK(model_type == "bpe" || model_type == "unigram", "--model-type: got \"", model_type,
             "\" (expected bpe or unigram)");
  HERD_CHECK(vocab_size >= 8 && vocab_size <= (int64_t(1) << 31) - 1, "--vocab-size: got ",
             vocab_size, " (expected an integer >= 8)");
  HERD_CHECK(!options.byte_fallback || vocab_size >= 300, "--vocab-size: got ", vocab_size,
             " (byte fallback needs >= 300: 256 bytes + 7 reserved + characters)");
  HERD_CHECK(options.max_sentence_length >= 16, "max_sentence_length: got ",
             options.max_sentence_length, " (expected >= 16)");
  HERD_CHECK(!out_prefix.empty(), "--out: empty prefix (expected e.g. data/tok/fortunes)");
  check_inputs_exist(inputs);

  std::unordered_map<std::string, std::string> args{
      {"vocab_size", std::to_string(vocab_size)},
      {"model_type", model_type},
      {"pad_id", std::to_string(kPadId)},
      {"unk_id", std::to_string(kUnkId)},
      {"bos_id", std::to_string(kBosId)},
      {"eos_id", std::to_string(kEosId)},
      // Placed right after the four ids above, in this order: kClsId, kSepId, kMaskId.
      {"user_defined_symbols", str(kClsPiece, ",", kSepPiece, ",", kMaskPiece)},
      {"byte_fallback", options.byte_fallback ? "true" : "false"},
      // Keep text as written (newlines, runs of spaces, tabs) so decode(encode(x)) == x.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"num_threads", std::to_string(options.num_threads)},
      {"max_sentence_length", std::to_string(options.max_sentence_length + 1)},
      // The cap is applied by DocumentSentences (first N); SentencePiece's own sampling
      // would draw from its global RNG.
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"minloglevel", "1"},
  };
  sentencepiece::SetRandomGeneratorSeed(options.seed);
  DocumentSentences sentences(inputs, options);
  std::string proto;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &sentences, &proto);
  if (!sentences.error().empty()) throw Error(sentences.error());
  HERD_CHECK(sentences.sentences() > 0, "tokenizer training: no documents in the inputs");
  HERD_CHECK(status.ok(), "tokenizer training failed: ", status.message());

  // Write the vocabulary from the trained model itself so the two files always agree.
  sentencepiece::SentencePieceProcessor sp;
  auto loaded = sp.LoadFromSerializedProto(proto);
  HERD_CHECK(loaded.ok(), "tokenizer training produced an unreadable model: ", loaded.message());
  HERD_CHECK(sp.PieceToId(kClsPiece) == kClsId && sp.PieceToId(kSepPiece) == kSepId &&
                 sp.PieceToId(kMaskPiece) == kMaskId,
             "tokenizer training placed [CLS] [SEP] [MASK] at ", sp.PieceToId(kClsPiece), " ",
             sp.PieceToId(kSepPiece), " ", sp.PieceToId(kMaskPiece), ", expected ", kClsId, " ",
             kSepId, " ", kMaskId);
  std::ostringstream vocab;
  for (int id = 0; id < sp.GetPieceSize(); ++id)
    vocab << sp.IdToPiece(id) << "\t" << sp.GetScore(id) << "\n";
  write_file_atomic(out_prefix + ".model", proto);
  write_file_atomic(out_prefix + ".vocab", vocab.str());
  log::info("tokenizer: trained ", model_type, " vocab ", sp.GetPieceSize(), " on ",
            sentences.sentences(), " sentences from ", sentences.documents(), " documents -> ",
            out_prefix, ".model");
}

Tokenizer::Tokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& model_path) {
  std::string bytes = read_file(model_path, "tokenizer model");
  Tokenizer tok;
  auto status = tok.sp_->LoadFromSerializedProto(bytes);
  HERD_CHECK(status.ok(), model_path, ": not a SentencePiece model (", status.message(), ")");
  HERD_CHECK(tok.sp_->eos_id() >= 0, model_path,
             ": tokenizer has no EOS piece (expected a model from herd tokenizer train)");
  tok.path_ = model_path;
  tok.identity_ = hex64(fnv1a64(bytes));
  return tok;
}

void Tokenizer::encode(std::string_view text, std::vector<int>* ids) const {
  auto status = sp_->Encode(absl::string_view(text.data(), text.size()), ids);
  HERD_CHECK(status.ok(), path_, ": encode failed (", status.message(), ")");
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  encode(text, &ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  const int n = sp_->GetPieceSize();
  for (int id : ids)
    HERD_CHECK(id >= 0 && id < n, path_, ": decode: token id ", id, " out of range [0, ", n, ")");
  std::string text;
  auto status = sp_->Decode(ids, &text);
  HERD_CHECK(status.ok(), path_, ": decode failed (", status.message(), ")");
  return text;
}

std::string Tokenizer::piece(int id) const {
  HERD_CHECK(id >= 0 && id < sp_->GetPieceSize(), path_, ": token id ", id, " out of range");
  return sp_->IdToPiece(id);
}

int64_t Tokenizer::vocab_size() const {
  return sp_->GetPieceSize();
}
int Tokenizer::eos_id() const {
  return sp_->eos_id();
}
int Tokenizer::bos_id() const {
  return sp_->bos_id();
}
int Tokenizer::pad_id() const {
  return sp_->pad_id();
}
int Tokenizer::unk_id() const {
  return sp_->unk_id();
}

int Tokenizer::special_id(const char* piece) const {
  const int id = sp_->PieceToId(piece);
  HERD_CHECK(id != sp_->unk_id() && sp_->IdToPiece(id) == piece, path_, ": tokenizer has no ",
             piece,
             " token (trained before herd reserved BERT's special tokens); retrain it with herd "
             "tokenizer train");
  return id;
}
int Tokenizer::cls_id() const {
  return special_id(kClsPiece);
}
int Tokenizer::sep_id() const {
  return special_id(kSepPiece);
}
int Tokenizer::mask_id() const {
  return special_id(kMaskPiece);
}

std::string tokenizer_identity(const std::string& model_path) {
  return hex64(fnv1a64(read_file(model_path, "tokenizer model")));
}

}  // namespace herd::data
