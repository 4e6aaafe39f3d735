#include "data/text/text_source.h"

#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/log.h"

namespace herd::data {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class PlainStream : public ByteStream {
 public:
  explicit PlainStream(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    HERD_CHECK(file_ != nullptr, path, ": cannot open for reading (", std::strerror(errno), ")");
  }
  ~PlainStream() override { std::fclose(file_); }
  size_t read(char* buf, size_t n) override {
    size_t got = std::fread(buf, 1, n, file_);
    HERD_CHECK(got > 0 || !std::ferror(file_), path_, ": read error (", std::strerror(errno), ")");
    return got;
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Both decompressors pull compressed input in chunks of this size from the inner stream.
constexpr size_t kChunk = 1 << 16;

class ZstdStream : public ByteStream {
 public:
  ZstdStream(std::unique_ptr<ByteStream> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)), in_buf_(kChunk) {
    ctx_ = ZSTD_createDStream();
    HERD_CHECK(ctx_ != nullptr, name_, ": cannot create a zstd decoder");
    ZSTD_initDStream(ctx_);
  }
  ~ZstdStream() override { ZSTD_freeDStream(ctx_); }
  size_t read(char* buf, size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      // A call that filled the output may have more decoded bytes to flush without any new
      // input, so only ask for input once the decoder had room to spare.
      if (in_.pos == in_.size && !output_was_full_) {
        size_t got = inner_->read(in_buf_.data(), in_buf_.size());
        if (got == 0) {
          // A frame still open at end of input means the file was cut short.
          HERD_CHECK(frame_done_, name_, ": truncated zstd stream");
          return 0;
        }
        in_ = ZSTD_inBuffer{in_buf_.data(), got, 0};
      }
      size_t rc = ZSTD_decompressStream(ctx_, &out, &in_);
      HERD_CHECK(!ZSTD_isError(rc), name_, ": bad zstd data (", ZSTD_getErrorName(rc), ")");
      frame_done_ = rc == 0;
      output_was_full_ = out.pos == out.size;
    }
    return out.pos;
  }

 private:
  std::unique_ptr<ByteStream> inner_;
  std::string name_;
  std::vector<char> in_buf_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  ZSTD_DStream* ctx_ = nullptr;
  bool frame_done_ = true;
  bool output_was_full_ = false;
};

class GzipStream : public ByteStream {
 public:
  GzipStream(std::unique_ptr<ByteStream> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)), in_buf_(kChunk) {
    std::memset(&z_, 0, sizeof(z_));
    // 15 + 32: accept both gzip and zlib headers.
    HERD_CHECK(inflateInit2(&z_, 15 + 32) == Z_OK, name_, ": cannot create a gzip decoder");
  }
  ~GzipStream() override { inflateEnd(&z_); }
  size_t read(char* buf, size_t n) override {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    size_t want = z_.avail_out;
    while (z_.avail_out == want) {
      // As for zstd: after filling the output, inflate may still hold bytes for the next call.
      if (z_.avail_in == 0 && !output_was_full_) {
        size_t got = inner_->read(in_buf_.data(), in_buf_.size());
        if (got == 0) {
          HERD_CHECK(member_done_, name_, ": truncated gzip stream");
          return 0;
        }
        z_.next_in = reinterpret_cast<Bytef*>(in_buf_.data());
        z_.avail_in = static_cast<uInt>(got);
      }
      if (member_done_) {
        // Concatenated gzip members (as `cat a.gz b.gz` makes) continue the stream.
        HERD_CHECK(inflateReset(&z_) == Z_OK, name_, ": gzip reset failed");
        member_done_ = false;
      }
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_done_ = true;
        output_was_full_ = false;  // a finished member has written all its bytes
      } else {
        HERD_CHECK(rc == Z_OK || rc == Z_BUF_ERROR, name_, ": bad gzip data (",
                   z_.msg ? z_.msg : "inflate error", ")");
        output_was_full_ = z_.avail_out == 0;
      }
    }
    return want - z_.avail_out;
  }

 private:
  std::unique_ptr<ByteStream> inner_;
  std::string name_;
  std::vector<char> in_buf_;
  z_stream z_;
  bool member_done_ = false;
  bool output_was_full_ = false;
};

std::string strip_compression(const std::string& path) {
  if (ends_with(path, ".zst")) return path.substr(0, path.size() - 4);
  if (ends_with(path, ".gz")) return path.substr(0, path.size() - 3);
  return path;
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A strict RFC 8259 scanner that only materialises the strings asked for.
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view s) : s_(s) {}

  // scalars: also accept a number, true or false as the field (stored as its JSON text).
  bool find_field(std::string_view key, std::string* out, bool scalars = false) {
    skip_ws();
    expect('{', "'{' (a JSON object)");
    bool found = false;
    std::string name;
    skip_ws();
    if (peek() == '}') {
      ++i_;
    } else {
      while (true) {
        skip_ws();
        HERD_CHECK(peek() == '"', at(), ": expected '\"' starting an object key");
        name.clear();
        parse_string(&name);
        skip_ws();
        expect(':', "':' after an object key");
        skip_ws();
        if (name == key && scalars && peek() != '"') {
          HERD_CHECK(
              peek() == '-' || (peek() >= '0' && peek() <= '9') || peek() == 't' || peek() == 'f',
              at(), ": field \"", std::string(key), "\" is not a string, number or boolean");
          const size_t start = i_;
          skip_value(1);
          out->assign(s_.data() + start, i_ - start);
          found = true;
        } else if (name == key) {
          HERD_CHECK(peek() == '"', at(), ": field \"", std::string(key),
                     "\" is not a string (expected \"", std::string(key), "\": \"...\")");
          out->clear();
          parse_string(out);
          found = true;
        } else {
          skip_value(1);
        }
        skip_ws();
        char c = next_char("',' or '}'");
        if (c == '}') break;
        HERD_CHECK(c == ',', at(-1), ": expected ',' or '}' in object");
      }
    }
    skip_ws();
    HERD_CHECK(i_ == s_.size(), at(), ": unexpected text after the JSON object");
    return found;
  }

 private:
  std::string at(int delta = 0) const { return str("column ", i_ + 1 + delta); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  char next_char(const char* what) {
    HERD_CHECK(i_ < s_.size(), at(), ": unexpected end of line (expected ", what, ")");
    return s_[i_++];
  }
  void expect(char c, const char* what) {
    HERD_CHECK(i_ < s_.size() && s_[i_] == c, at(), ": expected ", what);
    ++i_;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n'))
      ++i_;
  }

  uint32_t hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = next_char("4 hex digits after \\u");
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        throw Error(str(at(-1), ": expected 4 hex digits after \\u"));
      }
    }
    return v;
  }

  // At the opening quote. out == nullptr: validate and skip.
  void parse_string(std::string* out) {
    ++i_;
    while (true) {
      HERD_CHECK(i_ < s_.size(), at(), ": unterminated string");
      size_t start = i_;
      // Copy runs of plain bytes at once; that is most of any document.
      while (i_ < s_.size() && s_[i_] != '"' && s_[i_] != '\\' &&
             static_cast<unsigned char>(s_[i_]) >= 0x20)
        ++i_;
      if (out) out->append(s_.data() + start, i_ - start);
      char c = next_char("'\"' closing the string");
      if (c == '"') return;
      HERD_CHECK(c == '\\', at(-1), ": raw control character in string (expected an escape)");
      char e = next_char("an escape character");
      char plain = 0;
      switch (e) {
        case '"':
          plain = '"';
          break;
        case '\\':
          plain = '\\';
          break;
        case '/':
          plain = '/';
          break;
        case 'b':
          plain = '\b';
          break;
        case 'f':
          plain = '\f';
          break;
        case 'n':
          plain = '\n';
          break;
        case 'r':
          plain = '\r';
          break;
        case 't':
          plain = '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF)
            throw Error(str(at(-6), ": lone low surrogate \\u", std::hex, cp));
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            HERD_CHECK(i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u', at(),
                       ": high surrogate not followed by \\uDC00-\\uDFFF");
            i_ += 2;
            uint32_t lo = hex4();
            HERD_CHECK(lo >= 0xDC00 && lo <= 0xDFFF, at(-6),
                       ": high surrogate not followed by \\uDC00-\\uDFFF");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (out) append_utf8(cp, out);
          continue;
        }
        default:
          throw Error(str(at(-1), ": unknown escape \\", e));
      }
      if (out) out->push_back(plain);
    }
  }

  void skip_number() {
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else {
      HERD_CHECK(peek() >= '1' && peek() <= '9', at(), ": expected a JSON value");
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    if (peek() == '.') {
      ++i_;
      HERD_CHECK(peek() >= '0' && peek() <= '9', at(), ": expected digits after '.'");
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      HERD_CHECK(peek() >= '0' && peek() <= '9', at(), ": expected digits in exponent");
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
  }

  void skip_literal(std::string_view word) {
    HERD_CHECK(s_.substr(i_, word.size()) == word, at(), ": expected a JSON value");
    i_ += word.size();
  }

  void skip_value(int depth) {
    HERD_CHECK(depth < 256, at(), ": nesting deeper than 256 levels");
    char c = peek();
    if (c == '"') return parse_string(nullptr);
    if (c == 't') return skip_literal("true");
    if (c == 'f') return skip_literal("false");
    if (c == 'n') return skip_literal("null");
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      skip_ws();
      if (peek() == close) {
        ++i_;
        return;
      }
      while (true) {
        skip_ws();
        if (c == '{') {
          HERD_CHECK(peek() == '"', at(), ": expected '\"' starting an object key");
          parse_string(nullptr);
          skip_ws();
          expect(':', "':' after an object key");
          skip_ws();
        }
        skip_value(depth + 1);
        skip_ws();
        char d = next_char(c == '{' ? "',' or '}'" : "',' or ']'");
        if (d == close) return;
        HERD_CHECK(d == ',', at(-1), ": expected ',' or '", close, "'");
      }
    }
    skip_number();
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::unique_ptr<ByteStream> open_plain_stream(const std::string& path) {
  return std::make_unique<PlainStream>(path);
}

std::unique_ptr<ByteStream> open_zstd_stream(std::unique_ptr<ByteStream> inner,
                                             const std::string& name) {
  return std::make_unique<ZstdStream>(std::move(inner), name);
}

std::unique_ptr<ByteStream> open_gzip_stream(std::unique_ptr<ByteStream> inner,
                                             const std::string& name) {
  return std::make_unique<GzipStream>(std::move(inner), name);
}

std::unique_ptr<ByteStream> open_byte_stream(const std::string& path) {
  auto plain = open_plain_stream(path);
  if (ends_with(path, ".zst")) return open_zstd_stream(std::move(plain), path);
  if (ends_with(path, ".gz")) return open_gzip_stream(std::move(plain), path);
  return plain;
}

LineReader::LineReader(std::unique_ptr<ByteStream> stream)
    : stream_(std::move(stream)), buf_(1 << 16) {}

bool LineReader::fill() {
  if (eof_) return false;
  // Keep the unread tail, grow only when one line exceeds the buffer.
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
  size_t got = stream_->read(buf_.data() + end_, buf_.size() - end_);
  if (got == 0) eof_ = true;
  end_ += got;
  return got > 0;
}

bool LineReader::next(std::string& line) {
  size_t scanned = pos_;
  while (true) {
    const char* base = buf_.data();
    const void* nl = std::memchr(base + scanned, '\n', end_ - scanned);
    if (nl != nullptr) {
      size_t at = static_cast<const char*>(nl) - base;
      line.assign(base + pos_, at - pos_);
      pos_ = at + 1;
      break;
    }
    scanned = end_ - pos_;  // relative: fill() moves the tail to the front
    if (!fill()) {
      if (pos_ == end_) return false;
      line.assign(buf_.data() + pos_, end_ - pos_);  // last line without '\n'
      pos_ = end_;
      break;
    }
    scanned += pos_;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // Editors on Windows start UTF-8 files with a byte-order mark; it is not text.
  if (line_no_ == 0 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
  ++line_no_;
  return true;
}

TextFormat format_for_path(const std::string& path) {
  std::string base = strip_compression(path);
  if (ends_with(base, ".jsonl") || ends_with(base, ".json")) return TextFormat::jsonl;
  return TextFormat::text;
}

void check_inputs_exist(const std::vector<std::string>& paths) {
  HERD_CHECK(!paths.empty(), "no input files given (expected one or more paths)");
  for (const auto& p : paths) {
    struct stat st;
    HERD_CHECK(::stat(p.c_str(), &st) == 0, p, ": input file does not exist");
    HERD_CHECK(S_ISREG(st.st_mode), p, ": input is not a regular file");
  }
}

DocumentReader::DocumentReader(std::vector<std::string> paths, TextSourceOptions options)
    : paths_(std::move(paths)), options_(std::move(options)) {}

DocumentReader::~DocumentReader() = default;

const std::string& DocumentReader::current_path() const {
  return current_;
}

bool DocumentReader::open_next_file() {
  lines_.reset();
  if (file_index_ >= paths_.size()) return false;
  current_ = paths_[file_index_++];
  format_ = format_for_path(current_);
  lines_ = std::make_unique<LineReader>(open_byte_stream(current_));
  return true;
}

bool DocumentReader::next(std::string& doc) {
  while (true) {
    if (!lines_ && !open_next_file()) return false;
    bool got = format_ == TextFormat::jsonl ? next_jsonl(doc) : next_text(doc);
    if (got) {
      ++documents_;
      return true;
    }
    lines_.reset();  // this file is done
  }
}

bool DocumentReader::read_line() {
  bool got = false;
  try {
    got = lines_->next(line_);
  } catch (const Error& e) {
    // The stream's message names the file; say how far the good part reached.
    throw Error(str(e.what(), " (after line ", lines_->line_number(), ")"));
  }
  if (got) bytes_read_ += line_.size() + 1;
  return got;
}

bool DocumentReader::next_text(std::string& doc) {
  doc.clear();
  bool any = false;  // a document with only blank lines is still empty after trimming
  const bool split = !options_.doc_delimiter.empty();
  while (read_line()) {
    if (split && line_ == options_.doc_delimiter) {
      if (any) break;
      doc.clear();
      continue;
    }
    if (!doc.empty() || any) doc.push_back('\n');
    doc += line_;
    any = any || !line_.empty();
  }
  if (!any) return false;
  // Drop blank lines at the end (fortune files often have one before the delimiter).
  while (!doc.empty() && doc.back() == '\n') doc.pop_back();
  return true;
}

bool DocumentReader::next_jsonl(std::string& doc) {
  while (read_line()) {
    if (line_.find_first_not_of(" \t") == std::string::npos) continue;
    std::string problem;
    try {
      if (!json_string_field(line_, options_.json_field, &doc))
        problem = str("no field \"", options_.json_field, "\" (expected {\"", options_.json_field,
                      "\": \"...\"})");
    } catch (const Error& e) {
      problem = str("bad JSON line: ", e.what());
    }
    if (!problem.empty()) {
      std::string where = str(current_, ":", lines_->line_number(), ": ", problem);
      HERD_CHECK(options_.skip_bad_lines, where, " (--skip-bad-lines skips such lines)");
      // The first few are worth seeing; the rest only count.
      if (skipped_lines_ < 10) log::warn("skipped ", where);
      ++skipped_lines_;
      continue;
    }
    if (!doc.empty()) return true;
  }
  return false;
}

bool json_string_field(std::string_view json, std::string_view key, std::string* out) {
  return JsonScanner(json).find_field(key, out);
}

bool json_scalar_field(std::string_view json, std::string_view key, std::string* out) {
  return JsonScanner(json).find_field(key, out, true);
}

}  // namespace herd::data
