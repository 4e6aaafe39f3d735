#include "data/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "data/hash.h"

namespace herd::data {
namespace {

void check_slice(int64_t global_batch, int64_t rank, int64_t world) {
  HERD_CHECK(global_batch > 0, "loader: batch size ", global_batch, " (expected > 0)");
  HERD_CHECK(world > 0 && rank >= 0 && rank < world, "loader: rank ", rank, " of world ", world,
             " (expected 0 <= rank < world)");
}

uint64_t parse_u64(const std::string& key, const std::string& value, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  uint64_t v = std::strtoull(value.c_str(), &end, 10);
  HERD_CHECK(!value.empty() && value[0] != '-' && *end == '\0' && errno == 0, "loader state \"",
             text, "\": ", key, "=", value, " (expected an unsigned integer)");
  return v;
}

}  // namespace

void check_even_slice(int64_t global_batch, int64_t rank, int64_t world) {
  check_slice(global_batch, rank, world);
  HERD_CHECK(global_batch % world == 0, "loader: global batch ", global_batch,
             " does not divide by world size ", world);
}

std::string LoaderState::to_string() const {
  return str("epoch=", epoch, " next_sample=", next_sample, " seed=", seed);
}

LoaderState LoaderState::from_string(const std::string& text) {
  LoaderState s;
  bool seen[3] = {false, false, false};
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    size_t eq = item.find('=');
    HERD_CHECK(eq != std::string::npos, "loader state \"", text, "\": \"", item,
               "\" (expected key=value)");
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    int slot = key == "epoch" ? 0 : key == "next_sample" ? 1 : key == "seed" ? 2 : -1;
    HERD_CHECK(slot >= 0, "loader state \"", text, "\": unknown key ", key,
               " (expected epoch, next_sample, seed)");
    uint64_t v = parse_u64(key, value, text);
    (slot == 0 ? s.epoch : slot == 1 ? s.next_sample : s.seed) = v;
    seen[slot] = true;
  }
  HERD_CHECK(seen[0] && seen[1] && seen[2], "loader state \"", text,
             "\": expected epoch=N next_sample=N seed=N");
  return s;
}

torch::Tensor LoaderState::to_tensor() const {
  auto t = torch::empty({4}, torch::kInt64);
  auto* p = t.data_ptr<int64_t>();
  p[0] = 1;
  p[1] = static_cast<int64_t>(epoch);
  p[2] = static_cast<int64_t>(next_sample);
  p[3] = static_cast<int64_t>(seed);  // two's complement: the bits round-trip
  return t;
}

LoaderState LoaderState::from_tensor(const torch::Tensor& t) {
  HERD_CHECK(t.defined() && t.scalar_type() == torch::kInt64 && t.dim() == 1 && t.numel() == 4,
             "loader state tensor: expected int64 [4], got ",
             t.defined() ? str(t.scalar_type(), " ", t.sizes()) : std::string("undefined"));
  auto c = t.to(torch::kCPU).contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  HERD_CHECK(p[0] == 1, "loader state tensor: version ", p[0], " (expected 1)");
  LoaderState s;
  s.epoch = static_cast<uint64_t>(p[1]);
  s.next_sample = static_cast<uint64_t>(p[2]);
  s.seed = static_cast<uint64_t>(p[3]);
  return s;
}

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

std::vector<uint64_t> epoch_permutation(uint64_t num_samples, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> order(num_samples);
  for (uint64_t i = 0; i < num_samples; ++i) order[i] = i;
  SplitMix64 rng(mix64(seed) ^ mix64(epoch + 0x243f6a8885a308d3ULL));
  for (uint64_t i = num_samples; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

TrainLoader::TrainLoader(const DatasetManifest& manifest, int64_t seq_len, uint64_t seed)
    : stream_(manifest, manifest.train_shards), seq_len_(seq_len) {
  HERD_CHECK(seq_len > 0, "loader: seq_len ", seq_len, " (expected > 0)");
  num_samples_ = count_samples(stream_.size(), seq_len);
  HERD_CHECK(num_samples_ > 0, manifest.manifest_path(), ": train split has ", stream_.size(),
             " tokens (expected at least seq_len + 1 = ", seq_len + 1, ")");
  state_.seed = seed;
}

const std::vector<uint64_t>& TrainLoader::order(uint64_t epoch) {
  if (order_epoch_ != epoch) {
    order_ = epoch_permutation(num_samples_, state_.seed, epoch);
    order_epoch_ = epoch;
  }
  return order_;
}

void TrainLoader::fill_row(uint64_t sample, int64_t* row) const {
  stream_.copy(sample * static_cast<uint64_t>(seq_len_), static_cast<uint64_t>(seq_len_) + 1, row);
}

Batch TrainLoader::next_batch(int64_t global_batch, int64_t rank, int64_t world) {
  check_even_slice(global_batch, rank, world);
  const uint64_t B = static_cast<uint64_t>(global_batch);
  const uint64_t lo = static_cast<uint64_t>(rank) * B / static_cast<uint64_t>(world);
  const uint64_t hi = static_cast<uint64_t>(rank + 1) * B / static_cast<uint64_t>(world);
  const int64_t T = seq_len_;
  auto rows = torch::empty({static_cast<int64_t>(hi - lo), T + 1}, torch::kInt64);
  int64_t* data = rows.data_ptr<int64_t>();
  for (uint64_t j = lo; j < hi; ++j) read_ahead(j, data + (j - lo) * static_cast<uint64_t>(T + 1));
  advance(B);
  return Batch{rows.narrow(1, 0, T).contiguous(), rows.narrow(1, 1, T).contiguous()};
}

void TrainLoader::read_ahead(uint64_t offset, int64_t* row) {
  uint64_t pos = state_.next_sample + offset;
  uint64_t epoch = state_.epoch + pos / num_samples_;
  fill_row(order(epoch)[pos % num_samples_], row);
}

void TrainLoader::advance(uint64_t count) {
  uint64_t end = state_.next_sample + count;
  state_.epoch += end / num_samples_;
  state_.next_sample = end % num_samples_;
}

void TrainLoader::restore(const LoaderState& state) {
  HERD_CHECK(state.next_sample < num_samples_, "loader state ", state.to_string(),
             ": next_sample beyond this dataset's ", num_samples_,
             " samples (a different dataset or seq_len?)");
  state_ = state;
  order_epoch_ = UINT64_MAX;  // the seed may differ
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
  const uint64_t lo = static_cast<uint64_t>(rank) * n / static_cast<uint64_t>(world);
  const uint64_t hi = static_cast<uint64_t>(rank + 1) * n / static_cast<uint64_t>(world);
  const int64_t T = seq_len_;
  auto rows = torch::empty({static_cast<int64_t>(hi - lo), T + 1}, torch::kInt64);
  int64_t* data = rows.data_ptr<int64_t>();
  for (uint64_t j = lo; j < hi; ++j)
    stream_.copy((next_ + j) * static_cast<uint64_t>(T), static_cast<uint64_t>(T) + 1,
                 data + (j - lo) * static_cast<uint64_t>(T + 1));
  next_ += n;
  return Batch{rows.narrow(1, 0, T).contiguous(), rows.narrow(1, 1, T).contiguous()};
}

}  // namespace herd::data
