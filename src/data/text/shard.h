// Token shards in llm.c's .bin layout (see data/formats/shard.md): a header of 256 int32
// (magic, version, token count, zeros) followed by the tokens, little-endian.
//   magic 20240520 version 1: uint16 tokens (GPT-2 style vocabularies <= 65536)
//   magic 20240801 version 7: uint32 tokens (larger vocabularies, llm.c's Llama 3 layout)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/mapped_file.h"
#include "data/staged_file.h"

namespace herd::data {

constexpr int32_t kShardMagicU16 = 20240520;
constexpr int32_t kShardVersionU16 = 1;
constexpr int32_t kShardMagicU32 = 20240801;
constexpr int32_t kShardVersionU32 = 7;
constexpr size_t kShardHeaderInts = 256;
constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
// The token count is an int32 in the header.
constexpr uint64_t kShardMaxTokens = 0x7fffffff;

enum class TokenDtype { u16, u32 };

// u16 when every id of the vocabulary fits (vocab_size <= 65536), else u32.
TokenDtype dtype_for_vocab(int64_t vocab_size);
const char* dtype_name(TokenDtype dtype);  // "uint16" | "uint32"
// Accepts "uint16" | "uint32"; throws naming `where` otherwise.
TokenDtype parse_dtype(const std::string& name, const std::string& where);
size_t dtype_bytes(TokenDtype dtype);

// Streams tokens into `path` through a temporary file; finish() writes the header, fsyncs and
// renames. Destroyed without finish(), it removes the temporary and leaves `path` untouched.
class ShardWriter {
 public:
  ShardWriter(std::string path, TokenDtype dtype);

  // Throws on ids that do not fit the dtype or when the shard would exceed kShardMaxTokens.
  void append(const int* ids, size_t n);
  void append(const std::vector<int>& ids) { append(ids.data(), ids.size()); }
  uint64_t tokens() const { return tokens_; }
  const std::string& path() const { return file_.path(); }
  void finish();

 private:
  StagedFile file_;
  TokenDtype dtype_;
  uint64_t tokens_ = 0;
  std::vector<char> bytes_;  // one append's tokens at their width
};

// Writes a whole shard at once.
void write_shard(const std::string& path, TokenDtype dtype, const std::vector<int>& ids);

// A validated, memory-mapped shard. Move-only.
class ShardReader {
 public:
  // Checks magic, version and that the file size equals header + count * token width.
  explicit ShardReader(const std::string& path);
  ShardReader(ShardReader&& other) noexcept = default;
  ShardReader& operator=(ShardReader&& other) noexcept = default;

  uint64_t size() const { return tokens_; }
  TokenDtype dtype() const { return dtype_; }
  const std::string& path() const { return path_; }
  uint32_t operator[](uint64_t i) const {
    return dtype_ == TokenDtype::u16 ? reinterpret_cast<const uint16_t*>(data_)[i]
                                     : reinterpret_cast<const uint32_t*>(data_)[i];
  }
  // Tokens [begin, begin + n) widened to int64; the range must lie inside the shard.
  void copy(uint64_t begin, uint64_t n, int64_t* out) const;
  std::vector<int> read_all() const;

 private:
  std::string path_;
  MappedFile file_;
  const char* data_ = nullptr;
  uint64_t tokens_ = 0;
  TokenDtype dtype_ = TokenDtype::u16;
};

}  // namespace herd::data
