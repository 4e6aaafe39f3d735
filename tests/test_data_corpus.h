// Real-text corpora for the data-at-scale tests: the Debian fortunes as documents, written
// as PILE-style .jsonl.zst and C4-style .json.gz files with libzstd and zlib.
#pragma once

#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/file_util.h"
#include "data/text/text_source.h"

namespace herd::data::testing_util {

inline const std::string kFortuneDir = "/usr/share/games/fortunes/";

// Every plain fortune file (no .dat index, no .u8 link), sorted: 43 files, about 2.5 MB.
inline std::vector<std::string> fortune_files() {
  std::vector<std::string> files;
  for (const auto& name : list_dir(kFortuneDir))
    if (name.find('.') == std::string::npos && is_regular_file(kFortuneDir + name))
      files.push_back(kFortuneDir + name);
  return files;
}

// Their documents (separated by "%" lines), in order; read once per process.
inline const std::vector<std::string>& fortune_docs() {
  static const std::vector<std::string> docs = [] {
    TextSourceOptions opt;
    opt.doc_delimiter = "%";
    DocumentReader reader(fortune_files(), opt);
    std::vector<std::string> out;
    std::string doc;
    while (reader.next(doc)) out.push_back(doc);
    return out;
  }();
  return docs;
}

// A JSON string literal (quotes included) holding `s`; UTF-8 passes through unchanged.
inline std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The Pile's layout: {"text": ..., "meta": {"pile_set_name": ...}}, one object a line.
inline std::string pile_lines(const std::vector<std::string>& docs, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i)
    out += "{\"text\": " + json_quote(docs[i]) +
           ", \"meta\": {\"pile_set_name\": \"Fortunes\", \"index\": " + std::to_string(i) + "}}\n";
  return out;
}

// C4's layout: {"text", "timestamp", "url"}, the text field not first.
inline std::string c4_lines(const std::vector<std::string>& docs, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i)
    out += "{\"timestamp\":\"2019-04-25T12:57:54Z\",\"url\":\"https://example.org/" +
           std::to_string(i) + "\",\"text\":" + json_quote(docs[i]) + "}\n";
  return out;
}

inline std::string zstd_compress(const std::string& plain, int level = 3) {
  std::string out(ZSTD_compressBound(plain.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), plain.data(), plain.size(), level);
  if (ZSTD_isError(n)) throw std::runtime_error(ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

// One gzip member (windowBits 15 + 16: gzip framing, as `gzip` writes).
inline std::string gzip_compress(const std::string& plain) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&z, plain.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  return out;
}

}  // namespace herd::data::testing_util
