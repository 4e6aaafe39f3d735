#include "data/epoch_order.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "data/hash.h"

namespace herd::data {
void check_slice(int64_t global_batch, int64_t rank, int64_t world) {
  HERD_CHECK(global_batch > 0, "loader: batch size ", global_batch, " (expected > 0)");
  HERD_CHECK(world > 0 && rank >= 0 && rank < world, "loader: rank ", rank, " of world ", world,
             " (expected 0 <= rank < world)");
}

namespace {

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

std::vector<uint64_t> epoch_permutation(uint64_t num_samples, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> order(num_samples);
  for (uint64_t i = 0; i < num_samples; ++i) order[i] = i;
  SplitMix64 rng(mix64(seed) ^ mix64(epoch + 0x243f6a8885a308d3ULL));
  for (uint64_t i = num_samples; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

RankRows rank_rows(uint64_t n, int64_t rank, int64_t world) {
  return {static_cast<uint64_t>(rank) * n / static_cast<uint64_t>(world),
          static_cast<uint64_t>(rank + 1) * n / static_cast<uint64_t>(world)};
}

EpochOrder::EpochOrder(uint64_t num_samples, uint64_t seed) : n_(num_samples) {
  state_.seed = seed;
}

uint64_t EpochOrder::sample_at(uint64_t offset, uint64_t* epoch) {
  const uint64_t pos = state_.next_sample + offset, e = state_.epoch + pos / n_;
  if (order_epoch_ != e) {
    order_ = epoch_permutation(n_, state_.seed, e);
    order_epoch_ = e;
  }
  if (epoch) *epoch = e;
  return order_[pos % n_];
}

void EpochOrder::advance(uint64_t count) {
  const uint64_t end = state_.next_sample + count;
  state_.epoch += end / n_;
  state_.next_sample = end % n_;
}

void EpochOrder::restore(const LoaderState& state, const std::string& what) {
  HERD_CHECK(state.next_sample < n_, what, " state ", state.to_string(),
             ": next_sample beyond this dataset's ", n_,
             " samples (a different dataset or seq_len?)");
  state_ = state;
  order_epoch_ = UINT64_MAX;  // the seed may differ
}

}  // namespace herd::data
