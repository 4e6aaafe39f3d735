#include "data/text/prepare.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <regex>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "data/file_util.h"
#include "data/hash.h"
#include "data/text/input_files.h"
#include "data/text/text_source.h"
#include "data/text/tokenizer.h"

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

  void append(const int* ids, size_t count) {
    size_t done = 0;
    while (done < count) {
      if (!writer_) {
        writer_ = std::make_unique<ShardWriter>(
            m_->shard_path(ShardEntry{shard_file(split_, entries_->size()), 0}), m_->dtype);
      }
      size_t room = static_cast<size_t>(shard_tokens_ - writer_->tokens());
      size_t n = std::min(room, count - done);
      writer_->append(ids + done, n);
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

// Documents tokenized together: large enough that a worker's start-up is noise, small enough
// that `threads` of them in flight stay a few MiB.
constexpr size_t kChunkBytes = 256 << 10;
constexpr size_t kChunkDocs = 4096;

struct Chunk {
  std::vector<std::string> docs;
  std::vector<int> ids;     // every document's tokens followed by EOS, concatenated
  std::vector<size_t> end;  // ids[end[i-1], end[i]) belong to docs[i]
  uint64_t bytes = 0;
};

// The next documents of `reader`; empty at the end.
Chunk read_chunk(DocumentReader& reader) {
  Chunk c;
  std::string doc;
  while (c.bytes < kChunkBytes && c.docs.size() < kChunkDocs && reader.next(doc)) {
    c.bytes += doc.size();
    c.docs.push_back(std::move(doc));
    doc = std::string();
  }
  return c;
}

// Pure in its inputs (SentencePiece's Encode is const and thread-safe), so workers may run
// it on several chunks at once.
void encode_chunk(const Tokenizer& tok, int eos, Chunk* c) {
  std::vector<int> ids;
  c->end.reserve(c->docs.size());
  for (auto& doc : c->docs) {
    tok.encode(doc, &ids);
    c->ids.insert(c->ids.end(), ids.begin(), ids.end());
    c->ids.push_back(eos);
    c->end.push_back(c->ids.size());
    doc = std::string();  // the text is no longer needed
  }
}

int64_t resolve_threads(int64_t requested) {
  HERD_CHECK(requested >= 0 && requested <= 1024, "--threads: got ", requested,
             " (expected 0 for all cores, or 1..1024)");
  if (requested > 0) return requested;
  return std::max<int64_t>(1, std::thread::hardware_concurrency());
}

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

DatasetManifest prepare_text(const PrepareOptions& opt, PrepareReport* report_out) {
  HERD_CHECK(opt.val_fraction >= 0 && opt.val_fraction < 1, "--val-fraction: got ",
             opt.val_fraction, " (expected a number in [0, 1))");
  HERD_CHECK(opt.shard_tokens >= 1 && opt.shard_tokens <= kShardMaxTokens, "--shard-tokens: got ",
             opt.shard_tokens, " (expected 1..", kShardMaxTokens, ")");
  const int64_t threads = resolve_threads(opt.threads);
  const std::vector<std::string> files = expand_inputs(opt.inputs);
  check_inputs_exist(files);
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
  m.inputs = files;
  m.doc_delimiter = opt.doc_delimiter;

  // The old manifest goes first: a crash part-way must not leave it describing new shards.
  ::unlink(m.manifest_path().c_str());

  TextSourceOptions source;
  source.doc_delimiter = opt.doc_delimiter;
  source.json_field = opt.json_field;
  source.skip_bad_lines = opt.skip_bad_lines;
  DocumentReader reader(files, source);
  SplitWriter train("train", &m, &m.train_shards, opt.shard_tokens);
  SplitWriter val("val", &m, &m.val_shards, opt.shard_tokens);

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto last_log = start;
  PrepareReport rep;
  rep.threads = threads;
  auto report = [&](const char* what) {
    rep.seconds = std::chrono::duration<double>(clock::now() - start).count();
    double rate = rep.seconds > 0 ? 1.0 / rep.seconds : 0;
    log::info("prepare: ", what, rep.documents, " documents, ", rep.tokens, " tokens, ",
              rep.bytes / 1000000.0, " MB in ", rep.seconds, " s (",
              static_cast<uint64_t>(rep.documents * rate), " docs/s, ",
              static_cast<uint64_t>(rep.tokens * rate), " tokens/s, ", rep.bytes * rate / 1e6,
              " MB/s, ", threads, " threads)");
  };
  // Chunks leave in the order they were read, whichever worker finishes first.
  auto write_chunk = [&](const Chunk& c) {
    size_t begin = 0;
    for (size_t end : c.end) {
      if (is_val_document(rep.documents, opt.seed, opt.val_fraction)) {
        val.append(c.ids.data() + begin, end - begin);
        ++m.val_documents;
      } else {
        train.append(c.ids.data() + begin, end - begin);
        ++m.train_documents;
      }
      ++rep.documents;
      begin = end;
    }
    rep.tokens += c.ids.size();
    rep.bytes += c.bytes;
    if (clock::now() - last_log > std::chrono::seconds(5)) {
      last_log = clock::now();
      report("");
    }
  };
  std::deque<std::future<Chunk>> in_flight;
  while (true) {
    Chunk c = read_chunk(reader);
    if (c.docs.empty()) break;
    if (threads == 1) {
      encode_chunk(tok, m.eos_id, &c);
      write_chunk(c);
      continue;
    }
    in_flight.push_back(
        std::async(std::launch::async, [&tok, eos = m.eos_id, c = std::move(c)]() mutable {
          encode_chunk(tok, eos, &c);
          return std::move(c);
        }));
    if (static_cast<int64_t>(in_flight.size()) >= threads) {
      write_chunk(in_flight.front().get());
      in_flight.pop_front();
    }
  }
  for (; !in_flight.empty(); in_flight.pop_front()) write_chunk(in_flight.front().get());
  train.close();
  val.close();
  rep.skipped_lines = reader.skipped_lines();
  HERD_CHECK(rep.documents > 0,
             "prepare: the inputs hold no documents (check --doc-delimiter and files)");
  if (opt.val_fraction > 0 && m.val_documents == 0)
    log::warn("prepare: no document fell into the validation split (", rep.documents,
              " documents, --val-fraction ", opt.val_fraction, "); evaluation will have no data");
  remove_stale_shards(m);
  save_manifest(m);
  report("done: ");
  if (rep.skipped_lines > 0)
    log::warn("prepare: skipped ", rep.skipped_lines, " bad JSON lines (--skip-bad-lines)");
  log::info("prepare: ", files.size(), " input files; train ", m.train_documents, " documents / ",
            m.train_tokens(), " tokens in ", m.train_shards.size(), " shards; val ",
            m.val_documents, " documents / ", m.val_tokens(), " tokens in ", m.val_shards.size(),
            " shards -> ", m.manifest_path());
  if (report_out) *report_out = rep;
  return m;
}

}  // namespace herd::data
