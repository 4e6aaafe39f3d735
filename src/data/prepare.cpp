#include "data/prepare.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <regex>

#include "core/error.h"
#include "core/log.h"
#include "data/file_util.h"
#include "data/hash.h"
#include "data/text_source.h"
#include "data/tokenizer.h"

namespace herd::data {
namespace {

std::string shard_file(const char* split, size_t index) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s_%06zu.bin", split, index);
  return name;
}

// Fills consecutive shards of one split, cutting at exactly shard_tokens.
class SplitWriter {
 public:
  SplitWriter(const char* split, DatasetManifest* m, std::vector<ShardEntry>* entries,
              uint64_t shard_tokens)
      : split_(split), m_(m), entries_(entries), shard_tokens_(shard_tokens) {}

  void append(const std::vector<int>& ids) {
    size_t done = 0;
    while (done < ids.size()) {
      if (!writer_) {
        writer_ = std::make_unique<ShardWriter>(
            m_->shard_path(ShardEntry{shard_file(split_, entries_->size()), 0}), m_->dtype);
      }
      size_t room = static_cast<size_t>(shard_tokens_ - writer_->tokens());
      size_t n = std::min(room, ids.size() - done);
      writer_->append(ids.data() + done, n);
      done += n;
      if (writer_->tokens() == shard_tokens_) close();
    }
  }

  void close() {
    if (!writer_) return;
    writer_->finish();
    entries_->push_back(ShardEntry{base_name(writer_->path()), writer_->tokens()});
    writer_.reset();
  }

 private:
  const char* split_;
  DatasetManifest* m_;
  std::vector<ShardEntry>* entries_;
  uint64_t shard_tokens_;
  std::unique_ptr<ShardWriter> writer_;
};

void prepare_out_dir(const std::string& dir) {
  HERD_CHECK(!dir.empty(), "--out: empty path (expected a directory to write shards into)");
  make_dirs(dir);
  HERD_CHECK(::access(dir.c_str(), W_OK) == 0, dir, ": output directory is not writable");
}

// Removes shards of an earlier run that the new manifest does not list.
void remove_stale_shards(const DatasetManifest& m) {
  static const std::regex pattern("(train|val)_[0-9]{6}\\.bin");
  std::vector<std::string> keep;
  for (const auto& s : m.train_shards) keep.push_back(s.file);
  for (const auto& s : m.val_shards) keep.push_back(s.file);
  for (const auto& name : list_dir(m.dir)) {
    if (!std::regex_match(name, pattern)) continue;
    if (std::find(keep.begin(), keep.end(), name) != keep.end()) continue;
    if (::unlink(join_path(m.dir, name).c_str()) != 0)
      log::warn("prepare: could not remove stale shard ", join_path(m.dir, name));
  }
}

}  // namespace

bool is_val_document(uint64_t index, uint64_t seed, double val_fraction) {
  if (val_fraction <= 0) return false;
  // 53 random bits -> [0, 1), compared with the fraction.
  uint64_t h = mix64(mix64(seed ^ 0x6a09e667f3bcc909ULL) + index);
  return static_cast<double>(h >> 11) * 0x1.0p-53 < val_fraction;
}

DatasetManifest prepare_text(const PrepareOptions& opt) {
  HERD_CHECK(opt.val_fraction >= 0 && opt.val_fraction < 1, "--val-fraction: got ",
             opt.val_fraction, " (expected a number in [0, 1))");
  HERD_CHECK(opt.shard_tokens >= 1 && opt.shard_tokens <= kShardMaxTokens, "--shard-tokens: got ",
             opt.shard_tokens, " (expected 1..", kShardMaxTokens, ")");
  check_inputs_exist(opt.inputs);
  HERD_CHECK(is_regular_file(opt.tokenizer), opt.tokenizer,
             ": tokenizer model does not exist (expected PREFIX.model from herd tokenizer train)");
  Tokenizer tok = Tokenizer::load(opt.tokenizer);
  prepare_out_dir(opt.out_dir);

  DatasetManifest m;
  m.dir = opt.out_dir;
  m.tokenizer_path = absolute_path(opt.tokenizer);
  m.tokenizer_identity = tok.identity();
  m.vocab_size = tok.vocab_size();
  m.eos_id = tok.eos_id();
  m.dtype = dtype_for_vocab(m.vocab_size);
  m.val_fraction = opt.val_fraction;
  m.seed = opt.seed;
  m.inputs = opt.inputs;
  m.doc_delimiter = opt.doc_delimiter;

  // The old manifest goes first: a crash part-way must not leave it describing new shards.
  ::unlink(m.manifest_path().c_str());

  TextSourceOptions source;
  source.doc_delimiter = opt.doc_delimiter;
  source.json_field = opt.json_field;
  DocumentReader reader(opt.inputs, source);
  SplitWriter train("train", &m, &m.train_shards, opt.shard_tokens);
  SplitWriter val("val", &m, &m.val_shards, opt.shard_tokens);

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto last_log = start;
  uint64_t docs = 0, tokens = 0, bytes = 0;
  std::string doc;
  std::vector<int> ids;
  auto report = [&](const char* what) {
    double secs = std::chrono::duration<double>(clock::now() - start).count();
    double rate = secs > 0 ? 1.0 / secs : 0;
    log::info("prepare: ", what, docs, " documents, ", tokens, " tokens, ", bytes / 1000000.0,
              " MB in ", secs, " s (", static_cast<uint64_t>(docs * rate), " docs/s, ",
              static_cast<uint64_t>(tokens * rate), " tokens/s)");
  };
  while (reader.next(doc)) {
    tok.encode(doc, &ids);
    ids.push_back(m.eos_id);
    if (is_val_document(docs, opt.seed, opt.val_fraction)) {
      val.append(ids);
      ++m.val_documents;
    } else {
      train.append(ids);
      ++m.train_documents;
    }
    ++docs;
    tokens += ids.size();
    bytes += doc.size();
    if (clock::now() - last_log > std::chrono::seconds(5)) {
      last_log = clock::now();
      report("");
    }
  }
  train.close();
  val.close();
  HERD_CHECK(docs > 0, "prepare: the inputs hold no documents (check --doc-delimiter and files)");
  if (opt.val_fraction > 0 && m.val_documents == 0)
    log::warn("prepare: no document fell into the validation split (", docs,
              " documents, --val-fraction ", opt.val_fraction, "); evaluation will have no data");
  remove_stale_shards(m);
  save_manifest(m);
  report("done: ");
  log::info("prepare: train ", m.train_documents, " documents / ", m.train_tokens(), " tokens in ",
            m.train_shards.size(), " shards; val ", m.val_documents, " documents / ",
            m.val_tokens(), " tokens in ", m.val_shards.size(), " shards -> ", m.manifest_path());
  return m;
}

}  // namespace herd::data
