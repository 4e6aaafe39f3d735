#include "data/synthetic/synthetic_data.h"

#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "data/synthetic/spec.h"

namespace herd::data::synthetic {
namespace {

// A repeat is drawn again this many times before the set is declared impossible.
constexpr uint32_t kMaxRetries = 1000;

uint64_t example_seed(uint64_t seed, Split split, uint64_t index, uint32_t retry) {
  const uint64_t stream = mix64(seed ^ mix64(static_cast<uint64_t>(split) * 0x9e3779b97f4a7c15ULL));
  return mix64(stream ^ mix64(index + 0x243f6a8885a308d3ULL)) ^
         mix64(retry + 0xb7e151628aed2a6bULL);
}

uint64_t hash_example(const Example& e) {
  auto bytes = [](const std::vector<int64_t>& v) {
    return std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int64_t));
  };
  return fnv1a64(bytes(e.target), fnv1a64(bytes(e.input)));
}

}  // namespace

ExampleSet::ExampleSet(const Generator& gen, uint64_t seed, Split split, uint64_t count,
                       const std::string& count_key)
    : gen_(gen), seed_(seed), split_(split), count_(count) {
  if (!gen.distinct_examples() || split == Split::kFresh) return;
  retry_.assign(count, 0);
  std::unordered_set<uint64_t> seen;
  Example e;
  for (uint64_t i = 0; i < count; ++i) {
    while (true) {
      fill(i, e);
      if (seen.insert(hash_example(e)).second) break;
      HERD_CHECK(++retry_[i] < kMaxRetries, count_key, ": ", count,
                 " distinct examples cannot be drawn for this task (", i,
                 " found); lower it or raise data.synthetic.vocab_size / seq_len");
    }
  }
}

void ExampleSet::fill(uint64_t index, Example& out) const {
  Rng rng(example_seed(seed_, split_, index, retry_.empty() ? 0u : retry_[index]));
  gen_.generate(rng, index, out);
}

SyntheticData::SyntheticData(const SyntheticConfig& cfg, uint64_t seed)
    : cfg_(cfg), gen_(make_generator(cfg)) {
  if (auto p = check_spec(cfg)) throw Error(str("data.synthetic.", p->key, ": ", p->message));
  const auto n_train = static_cast<uint64_t>(cfg.train_examples);
  train_ = std::make_unique<ExampleSet>(*gen_, seed, fresh() ? Split::kFresh : Split::kTrain,
                                        n_train, "data.synthetic.train_examples");
  test_ = std::make_unique<ExampleSet>(*gen_, seed, Split::kTest,
                                       static_cast<uint64_t>(cfg.test_examples),
                                       "data.synthetic.test_examples");
  if (!fresh()) order_ = EpochOrder(n_train, seed);
  fresh_.seed = seed;
}

SyntheticBatch SyntheticData::rows(const ExampleSet& set, const std::vector<uint64_t>& ids,
                                   bool answers_only) const {
  const int64_t B = static_cast<int64_t>(ids.size()), T = row_len();
  SyntheticBatch b{torch::empty({B, T}, torch::kInt64), torch::empty({B, T}, torch::kInt64),
                   torch::empty({B, T}, torch::kBool), torch::empty({B}, torch::kInt64)};
  int64_t *in = b.input.data_ptr<int64_t>(), *tg = b.target.data_ptr<int64_t>();
  bool* ans = b.answer.data_ptr<bool>();
  Example e;
  for (int64_t r = 0; r < B; ++r) {
    set.fill(ids[static_cast<size_t>(r)], e);
    for (int64_t t = 0; t < T; ++t) {
      const auto i = static_cast<size_t>(t), o = static_cast<size_t>(r * T + t);
      in[o] = e.input[i];
      ans[o] = e.answer[i] != 0;
      tg[o] = answers_only && !e.answer[i] ? kIgnore : e.target[i];
    }
    b.group.data_ptr<int64_t>()[r] = e.group;
  }
  return b;
}

SyntheticBatch SyntheticData::next_batch(int64_t global_batch, int64_t rank, int64_t world) {
  check_even_slice(global_batch, rank, world);
  const auto B = static_cast<uint64_t>(global_batch);
  const RankRows mine = rank_rows(B, rank, world);
  std::vector<uint64_t> ids;
  for (uint64_t j = mine.begin; j < mine.end; ++j)
    ids.push_back(fresh() ? fresh_.next_sample + j : order_.sample_at(j));
  auto b = rows(*train_, ids, effective_loss(cfg_) == "answer");
  if (fresh())
    fresh_.next_sample += B;
  else
    order_.advance(B);
  return b;
}

std::string SyntheticData::state() const {
  return fresh() ? fresh_.to_string() : order_.state().to_string();
}

void SyntheticData::restore(const std::string& text) {
  const LoaderState s = LoaderState::from_string(text);
  if (!fresh()) return order_.restore(s, "synthetic loader");
  HERD_CHECK(s.epoch == 0, "synthetic loader state ", text,
             ": an epoch of a fixed training set, but data.synthetic.train_examples is 0 (fresh "
             "examples); resume with the run's own config");
  fresh_ = s;
}

SyntheticBatch SyntheticData::test_batch(uint64_t first, int64_t n) const {
  std::vector<uint64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(first + static_cast<uint64_t>(i));
  return rows(*test_, ids, true);
}

std::string SyntheticData::describe() const {
  return str("synthetic ", cfg_.task, ": vocab ", cfg_.vocab_size, ", rows of ", row_len(),
             " tokens, ",
             fresh() ? std::string("fresh examples every step")
                     : str(cfg_.train_examples, " train examples"),
             ", ", cfg_.test_examples, " test examples, loss on ",
             effective_loss(cfg_) == "all" ? "every position" : "the answers");
}

std::string SyntheticData::identity() const {
  return str("synthetic:", cfg_.task, ":vocab=", cfg_.vocab_size);
}

}  // namespace herd::data::synthetic
