#include "data/text/mixture.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace herd::data {
namespace {

// Weights become integer shares of this, so that the schedule is exact integer arithmetic
// and the same on every machine (no floating-point contraction or rounding differences).
constexpr double kShareScale = 1 << 20;
constexpr const char* kStateVersion = "1";

std::string join(const std::vector<uint64_t>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + std::to_string(values[i]);
  return out;
}

std::vector<uint64_t> split_u64(const std::string& text, const std::string& key,
                                const std::string& value) {
  std::vector<uint64_t> out;
  size_t start = 0;
  while (true) {
    size_t comma = value.find(',', start);
    std::string item = value.substr(start, comma == std::string::npos ? comma : comma - start);
    char* end = nullptr;
    errno = 0;
    uint64_t v = std::strtoull(item.c_str(), &end, 10);
    HERD_CHECK(!item.empty() && item[0] != '-' && *end == '\0' && errno == 0,
               "mixture loader state \"", text, "\": ", key, "=", value,
               " (expected comma-separated unsigned integers)");
    out.push_back(v);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

}  // namespace

void check_same_tokenizer(const std::vector<DatasetManifest>& manifests) {
  for (size_t i = 1; i < manifests.size(); ++i) {
    const auto& a = manifests[0];
    const auto& b = manifests[i];
    HERD_CHECK(a.tokenizer_identity == b.tokenizer_identity && a.vocab_size == b.vocab_size,
               "data.mix: ", b.manifest_path(), " was tokenized with tokenizer ",
               b.tokenizer_identity, " (vocab ", b.vocab_size, ") but ", a.manifest_path(),
               " with ", a.tokenizer_identity, " (vocab ", a.vocab_size,
               "); blended datasets must share one tokenizer (prepare them with the same .model)");
  }
}

MixtureLoader::MixtureLoader(const std::vector<DatasetManifest>& manifests,
                             const std::vector<double>& weights, int64_t seq_len, uint64_t seed)
    : seq_len_(seq_len), seed_(seed) {
  HERD_CHECK(!manifests.empty(), "data.mix: no datasets (expected a list of {dir, weight})");
  HERD_CHECK(weights.size() == manifests.size(), "data.mix: ", weights.size(), " weights for ",
             manifests.size(), " datasets");
  check_same_tokenizer(manifests);
  double sum = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    HERD_CHECK(std::isfinite(weights[i]) && weights[i] > 0, "data.mix: weight ", weights[i], " of ",
               manifests[i].dir, " (expected a finite number > 0)");
    sum += weights[i];
  }
  sources_.reserve(manifests.size());
  for (size_t i = 0; i < manifests.size(); ++i) {
    sources_.emplace_back(manifests[i], seq_len, seed + i);
    // A tiny weight still gets a share: a listed source is never silently dropped.
    shares_.push_back(std::max<int64_t>(1, std::llround(weights[i] / sum * kShareScale)));
    total_share_ += shares_.back();
  }
  drawn_.assign(sources_.size(), 0);
}

uint32_t MixtureLoader::pick_next() const {
  // SWRR: after g slots, source s is owed g * share_s - drawn_s * total (in units of
  // 1/total samples); the next slot goes to the largest debt after this slot's credit,
  // the lowest index on ties. 128-bit: g * share needs up to 64 + 20 bits.
  __int128 g = 0;
  for (uint64_t d : drawn_) g += d;
  uint32_t best = 0;
  __int128 best_score = 0;
  for (size_t s = 0; s < sources_.size(); ++s) {
    __int128 score = (g + 1) * shares_[s] - static_cast<__int128>(drawn_[s]) * total_share_;
    if (s == 0 || score > best_score) {
      best = static_cast<uint32_t>(s);
      best_score = score;
    }
  }
  return best;
}

Batch MixtureLoader::next_batch(int64_t global_batch, int64_t rank, int64_t world) {
  check_even_slice(global_batch, rank, world);
  const uint64_t B = static_cast<uint64_t>(global_batch);
  const uint64_t lo = static_cast<uint64_t>(rank) * B / static_cast<uint64_t>(world);
  const uint64_t hi = static_cast<uint64_t>(rank + 1) * B / static_cast<uint64_t>(world);
  const int64_t T = seq_len_;
  auto rows = torch::empty({static_cast<int64_t>(hi - lo), T + 1}, torch::kInt64);
  int64_t* data = rows.data_ptr<int64_t>();

  // Every rank walks the whole schedule of the batch, so that each source's offset within it
  // (and its advance afterwards) is the same on every rank.
  const std::vector<uint64_t> start = drawn_;
  last_sources_.resize(B);
  for (uint64_t j = 0; j < B; ++j) {
    uint32_t s = pick_next();
    last_sources_[j] = s;
    if (j >= lo && j < hi)
      sources_[s].read_ahead(drawn_[s] - start[s], data + (j - lo) * static_cast<uint64_t>(T + 1));
    ++drawn_[s];
  }
  for (size_t s = 0; s < sources_.size(); ++s) sources_[s].advance(drawn_[s] - start[s]);
  return Batch{rows.narrow(1, 0, T).contiguous(), rows.narrow(1, 1, T).contiguous()};
}

std::string MixtureLoader::state() const {
  std::vector<uint64_t> shares(shares_.begin(), shares_.end()), samples;
  for (const auto& src : sources_) samples.push_back(src.num_samples());
  return str("mixture=", kStateVersion, " seed=", seed_, " weights=", join(shares),
             " samples=", join(samples), " drawn=", join(drawn_));
}

void MixtureLoader::restore(const std::string& text) {
  std::istringstream in(text);
  std::string item, version;
  bool have_seed = false;
  uint64_t seed = 0;
  std::vector<uint64_t> shares, samples, drawn;
  bool have[3] = {false, false, false};
  while (in >> item) {
    size_t eq = item.find('=');
    HERD_CHECK(eq != std::string::npos, "mixture loader state \"", text, "\": \"", item,
               "\" (expected key=value)");
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "mixture") {
      version = value;
    } else if (key == "seed") {
      auto v = split_u64(text, key, value);
      HERD_CHECK(v.size() == 1, "mixture loader state \"", text, "\": seed=", value,
                 " (expected one unsigned integer)");
      seed = v[0];
      have_seed = true;
    } else if (key == "weights" || key == "samples" || key == "drawn") {
      int slot = key == "weights" ? 0 : key == "samples" ? 1 : 2;
      (slot == 0 ? shares : slot == 1 ? samples : drawn) = split_u64(text, key, value);
      have[slot] = true;
    } else {
      throw Error(str("mixture loader state \"", text, "\": unknown key ", key,
                      " (expected mixture, seed, weights, samples, drawn)"));
    }
  }
  HERD_CHECK(version == kStateVersion && have_seed && have[0] && have[1] && have[2],
             "mixture loader state \"", text, "\": expected mixture=", kStateVersion,
             " seed=N weights=N,.. samples=N,.. drawn=N,.. (a TrainLoader state? data.dir and "
             "data.mix runs do not resume each other)");
  const size_t n = sources_.size();
  HERD_CHECK(shares.size() == n && samples.size() == n && drawn.size() == n,
             "mixture loader state \"", text, "\": ", drawn.size(), " sources but data.mix lists ",
             n);
  for (size_t s = 0; s < n; ++s) {
    HERD_CHECK(shares[s] == static_cast<uint64_t>(shares_[s]), "mixture loader state \"", text,
               "\": source ", s, " has weight share ", shares[s], " but the config gives ",
               shares_[s], " (blending weights cannot change on resume)");
    HERD_CHECK(samples[s] == sources_[s].num_samples(), "mixture loader state \"", text,
               "\": source ", s, " had ", samples[s], " samples but has ",
               sources_[s].num_samples(), " now (a different dataset or seq_len?)");
  }
  seed_ = seed;
  drawn_ = drawn;
  for (size_t s = 0; s < n; ++s) {
    LoaderState st;
    st.epoch = drawn_[s] / samples[s];
    st.next_sample = drawn_[s] % samples[s];
    st.seed = seed_ + s;
    sources_[s].restore(st);
  }
  last_sources_.clear();
}

uint64_t MixtureLoader::num_tokens() const {
  uint64_t total = 0;
  for (const auto& s : sources_) total += s.num_tokens();
  return total;
}

uint64_t MixtureLoader::num_samples() const {
  uint64_t total = 0;
  for (const auto& s : sources_) total += s.num_samples();
  return total;
}

}  // namespace herd::data
