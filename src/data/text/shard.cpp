#include "data/text/shard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "data/file_util.h"

// Shards are little-endian on disk; herd writes and maps them natively.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "shard I/O assumes a little-endian host");

namespace herd::data {
namespace {

std::string shard_name(const std::string& path) {
  return "shard " + base_name(path);
}

}  // namespace

TokenDtype dtype_for_vocab(int64_t vocab_size) {
  return vocab_size <= 65536 ? TokenDtype::u16 : TokenDtype::u32;
}

const char* dtype_name(TokenDtype dtype) {
  return dtype == TokenDtype::u16 ? "uint16" : "uint32";
}

TokenDtype parse_dtype(const std::string& name, const std::string& where) {
  if (name == "uint16") return TokenDtype::u16;
  if (name == "uint32") return TokenDtype::u32;
  throw Error(str(where, ": token dtype \"", name, "\" (expected uint16 or uint32)"));
}

size_t dtype_bytes(TokenDtype dtype) {
  return dtype == TokenDtype::u16 ? 2 : 4;
}

ShardWriter::ShardWriter(std::string path, TokenDtype dtype)
    : file_(std::move(path), kShardHeaderBytes, 1 << 20), dtype_(dtype) {}

void ShardWriter::append(const int* ids, size_t n) {
  const std::string& path = file_.path();
  HERD_CHECK(file_.writable(), path, ": append after finish or failure");
  HERD_CHECK(tokens_ + n <= kShardMaxTokens, path, ": shard would hold more than ", kShardMaxTokens,
             " tokens (the header count is an int32; use smaller shards)");
  const int64_t limit = dtype_ == TokenDtype::u16 ? 0xffff : 0xffffffffLL;
  const size_t width = dtype_bytes(dtype_);
  bytes_.clear();
  for (size_t i = 0; i < n; ++i) {
    HERD_CHECK(ids[i] >= 0 && ids[i] <= limit, path, ": token id ", ids[i], " does not fit ",
               dtype_name(dtype_));
    if (dtype_ == TokenDtype::u16) {
      uint16_t v = static_cast<uint16_t>(ids[i]);
      bytes_.insert(bytes_.end(), reinterpret_cast<char*>(&v), reinterpret_cast<char*>(&v) + width);
    } else {
      uint32_t v = static_cast<uint32_t>(ids[i]);
      bytes_.insert(bytes_.end(), reinterpret_cast<char*>(&v), reinterpret_cast<char*>(&v) + width);
    }
  }
  file_.append(bytes_.data(), bytes_.size());
  tokens_ += n;
}

void ShardWriter::finish() {
  HERD_CHECK(file_.writable(), file_.path(), ": finish after finish or failure");
  int32_t header[kShardHeaderInts] = {};
  header[0] = dtype_ == TokenDtype::u16 ? kShardMagicU16 : kShardMagicU32;
  header[1] = dtype_ == TokenDtype::u16 ? kShardVersionU16 : kShardVersionU32;
  header[2] = static_cast<int32_t>(tokens_);
  file_.commit(header, sizeof(header));
}

void write_shard(const std::string& path, TokenDtype dtype, const std::vector<int>& ids) {
  ShardWriter writer(path, dtype);
  writer.append(ids);
  writer.finish();
}

ShardReader::ShardReader(const std::string& path)
    : path_(path), file_(path, shard_name(path), kShardHeaderBytes, "header of 256 int32") {
  const std::string name = shard_name(path);
  const uint64_t bytes = file_.size();
  int32_t header[3];
  std::memcpy(header, file_.data(), sizeof(header));
  if (header[0] == kShardMagicU16) {
    dtype_ = TokenDtype::u16;
    HERD_CHECK(header[1] == kShardVersionU16, name, ": version ", header[1], " for magic ",
               header[0], " (expected ", kShardVersionU16, ")");
  } else if (header[0] == kShardMagicU32) {
    dtype_ = TokenDtype::u32;
    HERD_CHECK(header[1] == kShardVersionU32, name, ": version ", header[1], " for magic ",
               header[0], " (expected ", kShardVersionU32, ")");
  } else {
    throw Error(str(name, ": bad magic ", header[0], " (expected ", kShardMagicU16, " or ",
                    kShardMagicU32, ")"));
  }
  HERD_CHECK(header[2] >= 0, name, ": negative token count ", header[2], " in header");
  tokens_ = static_cast<uint64_t>(header[2]);
  const uint64_t expected = kShardHeaderBytes + tokens_ * dtype_bytes(dtype_);
  HERD_CHECK(bytes == expected, name, ": ", bytes, " bytes but the header counts ", tokens_, " ",
             dtype_name(dtype_), " tokens (expected ", expected, " bytes; ",
             bytes < expected ? "truncated file" : "trailing bytes or wrong count", ")");
  data_ = file_.data() + kShardHeaderBytes;
}

void ShardReader::copy(uint64_t begin, uint64_t n, int64_t* out) const {
  HERD_CHECK(begin <= tokens_ && n <= tokens_ - begin, shard_name(path_), ": read of [", begin,
             ", ", begin + n, ") past its ", tokens_, " tokens");
  if (dtype_ == TokenDtype::u16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(data_) + begin;
    for (uint64_t i = 0; i < n; ++i) out[i] = p[i];
  } else {
    const uint32_t* p = reinterpret_cast<const uint32_t*>(data_) + begin;
    for (uint64_t i = 0; i < n; ++i) out[i] = p[i];
  }
}

std::vector<int> ShardReader::read_all() const {
  std::vector<int> out(tokens_);
  for (uint64_t i = 0; i < tokens_; ++i) out[i] = static_cast<int>((*this)[i]);
  return out;
}

}  // namespace herd::data
