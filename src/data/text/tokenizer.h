// SentencePiece tokenizers: training from herd's document readers, and a loaded model with
// an identity (a digest of the model file) that checkpoints record.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/text/text_source.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace herd::data {

// Reserved ids of every tokenizer herd trains.
constexpr int kPadId = 0;
constexpr int kUnkId = 1;
constexpr int kBosId = 2;
constexpr int kEosId = 3;
// BERT's special tokens, user-defined symbols of every tokenizer herd trains (ids 4, 5, 6;
// [PAD] is kPadId). Tokenizers trained before they were reserved lack them.
constexpr const char* kClsPiece = "[CLS]";
constexpr const char* kSepPiece = "[SEP]";
constexpr const char* kMaskPiece = "[MASK]";
constexpr int kClsId = 4;
constexpr int kSepId = 5;
constexpr int kMaskId = 6;

struct TokenizerTrainOptions {
  TextSourceOptions source;
  // Training sentences fed to SentencePiece: the first N (documents, or pieces of long
  // documents); 0 means no cap.
  int64_t max_sentences = 1000000;
  // Documents longer than this many bytes are cut at line breaks into several sentences.
  int64_t max_sentence_length = 8192;
  double character_coverage = 1.0;
  // Unknown characters encode as their UTF-8 bytes (needs vocab_size >= 256 + 4 + chars).
  bool byte_fallback = true;
  uint32_t seed = 1;
  // More threads train unigram models faster; the model then depends on the thread count.
  int num_threads = 1;
};

// Trains on the documents of `inputs` and writes out_prefix.model and out_prefix.vocab
// (atomically). model_type: "bpe" or "unigram". Throws herd::Error on bad inputs/options.
void train_tokenizer(const std::vector<std::string>& inputs, int64_t vocab_size,
                     const std::string& model_type, const std::string& out_prefix,
                     const TokenizerTrainOptions& options = {});

class Tokenizer {
 public:
  // Loads a SentencePiece .model file; errors name the path.
  static Tokenizer load(const std::string& model_path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int> encode(std::string_view text) const;
  void encode(std::string_view text, std::vector<int>* ids) const;
  // Throws on ids outside [0, vocab_size()).
  std::string decode(const std::vector<int>& ids) const;
  std::string piece(int id) const;

  int64_t vocab_size() const;
  int eos_id() const;
  int bos_id() const;
  int pad_id() const;
  int unk_id() const;
  // BERT's special tokens; a one-line error naming the file when the tokenizer lacks them.
  int cls_id() const;
  int sep_id() const;
  int mask_id() const;
  // FNV-1a 64 of the model file's bytes, 16 hex digits.
  const std::string& identity() const { return identity_; }
  const std::string& path() const { return path_; }

 private:
  Tokenizer();
  int special_id(const char* piece) const;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
  std::string identity_;
};

// The identity of a model file without loading it.
std::string tokenizer_identity(const std::string& model_path);

}  // namespace herd::data
