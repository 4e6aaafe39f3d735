#include "data/text/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "data/hash.h"

namespace herd::data {
TokenStream::TokenStream(const DatasetManifest& m, const std::vector<ShardEntry>& shards)
    : vocab_size_(m.vocab_size) {
  for (const auto& entry : shards) {
    ShardReader reader(m.shard_path(entry));
    HERD_CHECK(reader.size() == entry.tokens, "shard ", entry.file, ": ", reader.size(),
               " tokens but ", m.manifest_path(), " lists ", entry.tokens);
    HERD_CHECK(is_llmc_folder(m) || reader.dtype() == m.dtype, "shard ", entry.file, ": ",
               dtype_name(reader.dtype()), " tokens but ", m.manifest_path(), " says ",
               dtype_name(m.dtype));
    starts_.push_back(total_);
    total_ += reader.size();
    shards_.push_back(std::move(reader));
  }
}

void TokenStream::copy(uint64_t begin, uint64_t n, int64_t* out) const {
  HERD_CHECK(begin <= total_ && n <= total_ - begin, "token stream: read of [", begin, ", ",
             begin + n, ") past its ", total_, " tokens");
  // The shard holding `begin`, then onward across shard ends.
  size_t s = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), begin) -
                                 starts_.begin()) -
             1;
  uint64_t done = 0;
  while (done < n) {
    uint64_t offset = begin + done - starts_[s];
    uint64_t take = std::min(n - done, shards_[s].size() - offset);
    shards_[s].copy(offset, take, out + done);
    for (uint64_t i = 0; i < take; ++i)
      HERD_CHECK(out[done + i] < vocab_size_, "shard ", shards_[s].path(), ": token ",
                 out[done + i], " at ", offset + i, " >= vocab_size ", vocab_size_);
    done += take;
    ++s;
  }
}

uint64_t count_samples(uint64_t tokens, int64_t seq_len) {
  const uint64_t t = static_cast<uint64_t>(seq_len);
  return tokens > t ? (tokens - 1) / t : 0;
}

TrainLoader::TrainLoader(const DatasetManifest& manifest, int64_t seq_len, uint64_t seed)
    : stream_(manifest, manifest.train_shards), seq_len_(seq_len) {
  HERD_CHECK(seq_len > 0, "loader: seq_len ", seq_len, " (expected > 0)");
  num_samples_ = count_samples(stream_.size(), seq_len);
  HERD_CHECK(num_samples_ > 0, manifest.manifest_path(), ": train split has ", stream_.size(),
             " tokens (expected at least seq_len + 1 = ", seq_len + 1, ")");
  order_ = EpochOrder(num_samples_, seed);
}

void TrainLoader::fill_row(uint64_t sample, int64_t* row) const {
  stream_.copy(sample * static_cast<uint64_t>(seq_len_), static_cast<uint64_t>(seq_len_) + 1, row);
}

Batch TrainLoader::next_batch(int64_t global_batch, int64_t rank, int64_t world) {
  check_even_slice(global_batch, rank, world);
  const uint64_t B = static_cast<uint64_t>(global_batch);
  const RankRows mine = rank_rows(B, rank, world);
  const int64_t T = seq_len_;
  auto rows = torch::empty({static_cast<int64_t>(mine.size()), T + 1}, torch::kInt64);
  int64_t* data = rows.data_ptr<int64_t>();
  for (uint64_t j = mine.begin; j < mine.end; ++j)
    read_ahead(j, data + (j - mine.begin) * static_cast<uint64_t>(T + 1));
  advance(B);
  return Batch{rows.narrow(1, 0, T).contiguous(), rows.narrow(1, 1, T).contiguous()};
}

void TrainLoader::read_ahead(uint64_t offset, int64_t* row) {
  fill_row(order_.sample_at(offset), row);
}

void TrainLoader::advance(uint64_t count) {
  order_.advance(count);
}

ValLoader::ValLoader(const DatasetManifest& manifest, int64_t seq_len)
    : stream_(manifest, manifest.val_shards), seq_len_(seq_len) {
  HERD_CHECK(seq_len > 0, "loader: seq_len ", seq_len, " (expected > 0)");
  num_samples_ = count_samples(stream_.size(), seq_len);
}

std::optional<Batch> ValLoader::next_batch(int64_t global_batch, int64_t rank, int64_t world) {
  check_slice(global_batch, rank, world);
  if (next_ >= num_samples_) return std::nullopt;
  const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(global_batch), num_samples_ - next_);
  const RankRows mine = rank_rows(n, rank, world);
  const int64_t T = seq_len_;
  auto rows = torch::empty({static_cast<int64_t>(mine.size()), T + 1}, torch::kInt64);
  int64_t* data = rows.data_ptr<int64_t>();
  for (uint64_t j = mine.begin; j < mine.end; ++j)
    stream_.copy((next_ + j) * static_cast<uint64_t>(T), static_cast<uint64_t>(T) + 1,
                 data + (j - mine.begin) * static_cast<uint64_t>(T + 1));
  next_ += n;
  return Batch{rows.narrow(1, 0, T).contiguous(), rows.narrow(1, 1, T).contiguous()};
}

}  // namespace herd::data
