// Streaming document readers over text corpora: a byte stream per file (plain, zstd, gzip)
// under a line splitter, under a per-format document splitter. One document is in memory at
// a time; the file never is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace herd::data {

// A sequential source of bytes. read() returns 0 only at the end; errors throw herd::Error.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  virtual size_t read(char* buf, size_t n) = 0;
};

std::unique_ptr<ByteStream> open_plain_stream(const std::string& path);
// Decompressors over another stream; `name` is the file named in error messages.
std::unique_ptr<ByteStream> open_zstd_stream(std::unique_ptr<ByteStream> inner,
                                             const std::string& name);
std::unique_ptr<ByteStream> open_gzip_stream(std::unique_ptr<ByteStream> inner,
                                             const std::string& name);
// By extension: *.zst -> zstd, *.gz -> gzip (also zlib), anything else -> plain.
std::unique_ptr<ByteStream> open_byte_stream(const std::string& path);

// Splits a byte stream into lines without the '\n' (and without a trailing '\r'); drops a
// UTF-8 byte-order mark at the start.
class LineReader {
 public:
  explicit LineReader(std::unique_ptr<ByteStream> stream);
  bool next(std::string& line);
  uint64_t line_number() const { return line_no_; }  // of the line last returned, 1-based

 private:
  bool fill();

  std::unique_ptr<ByteStream> stream_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  uint64_t line_no_ = 0;
};

enum class TextFormat { text, jsonl };
// *.jsonl / *.json (optionally + .zst/.gz) -> jsonl; everything else -> text.
TextFormat format_for_path(const std::string& path);

struct TextSourceOptions {
  // Text files: a line equal to this separates documents (e.g. "%" for fortune files).
  // Empty: each file is one document.
  std::string doc_delimiter;
  // JSON lines: the string field that holds the document.
  std::string json_field = "text";
  // JSON lines that do not parse or lack the field are counted and skipped instead of being
  // an error. A truncated or corrupt compressed file is an error either way.
  bool skip_bad_lines = false;
};

// Yields the non-empty documents of `paths`, in order. Documents of text files are their
// lines joined with '\n' (no trailing newline).
class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> paths, TextSourceOptions options);
  ~DocumentReader();
  bool next(std::string& doc);
  // The file (and line, for jsonl) the last document came from.
  const std::string& current_path() const;
  uint64_t documents() const { return documents_; }
  // Bad JSON lines skipped so far (only with skip_bad_lines).
  uint64_t skipped_lines() const { return skipped_lines_; }
  // Uncompressed bytes of the lines read so far (for throughput reports).
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  bool open_next_file();
  bool next_text(std::string& doc);
  bool next_jsonl(std::string& doc);
  bool read_line();  // into line_; errors of the byte stream gain the line they cut

  std::vector<std::string> paths_;
  TextSourceOptions options_;
  size_t file_index_ = 0;  // index of the next file to open
  std::unique_ptr<LineReader> lines_;
  TextFormat format_ = TextFormat::text;
  std::string current_;
  std::string line_;
  uint64_t documents_ = 0;
  uint64_t skipped_lines_ = 0;
  uint64_t bytes_read_ = 0;
};

// Checks that every path names a readable regular file; throws naming the first that is not.
void check_inputs_exist(const std::vector<std::string>& paths);

// Parses one JSON object (the whole of `json`, surrounding whitespace allowed) and stores the
// top-level string field `key` in *out. Returns false when the key is absent. Throws
// herd::Error (message without location: callers prefix file:line) on malformed JSON or when
// the field is not a string.
bool json_string_field(std::string_view json, std::string_view key, std::string* out);
// Like json_string_field, but a number or boolean field is accepted too (as its JSON text,
// e.g. "3" or "true"): labels of classification data.
bool json_scalar_field(std::string_view json, std::string_view key, std::string* out);

}  // namespace herd::data
