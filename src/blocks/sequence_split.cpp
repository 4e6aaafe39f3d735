#include "blocks/sequence_split.h"

#include <algorithm>
#include <atomic>

#include "core/error.h"

namespace herd {
namespace {

std::atomic<const SequenceSplit*> current{nullptr};

}  // namespace

const SequenceSplit* sequence_split() {
  return current.load();
}

SequenceSplitScope::SequenceSplitScope(const SequenceSplit* split) : previous_(current.load()) {
  current.store(split);
}

SequenceSplitScope::~SequenceSplitScope() {
  current.store(previous_);
}

int64_t split_parts() {
  const auto* s = sequence_split();
  return s ? s->parts() : 1;
}

int64_t global_length(int64_t local_length) {
  return local_length * split_parts();
}

int64_t position_offset(int64_t local_length) {
  const auto* s = sequence_split();
  return s ? s->index() * local_length : 0;
}

torch::Tensor gather_positions(const torch::Tensor& x) {
  const auto* s = sequence_split();
  if (!s) return x;
  HERD_CHECK(x.dim() >= 2 && x.size(-2) % s->parts() == 0, "context parallel: ", x.size(-2),
             " channels do not split among ", s->parts(), " shards");
  return s->all_to_all(x, x.dim() - 2, x.dim() - 1);
}

torch::Tensor scatter_positions(const torch::Tensor& y) {
  const auto* s = sequence_split();
  if (!s) return y;
  return s->all_to_all(y, y.dim() - 1, y.dim() - 2);
}

torch::Tensor all_positions(const torch::Tensor& x) {
  const auto* s = sequence_split();
  if (!s) return x;
  return s->all_gather(x).movedim(0, -2).flatten(-2, -1);  // [C, .., L/C] -> [.., L]
}

torch::Tensor local_channels(const torch::Tensor& t, int64_t dim) {
  const auto* s = sequence_split();
  if (!s) return t;
  HERD_CHECK(t.size(dim) % s->parts() == 0, "context parallel: ", t.size(dim),
             " channels do not split among ", s->parts(), " shards");
  const int64_t n = t.size(dim) / s->parts();
  return t.narrow(dim, s->index() * n, n);
}

torch::Tensor shard_halo(const torch::Tensor& x, int64_t before, int64_t after) {
  const auto* s = sequence_split();
  if (!s) return torch::constant_pad_nd(x, {before, after});
  const int64_t L = x.size(-1), C = s->parts(), i = s->index();
  HERD_CHECK(before <= L && after <= L, "context parallel: a filter reaching ",
             std::max(before, after), " positions across a shard of ", L,
             " (train.context_parallel: fewer shards or a longer sequence)");
  // Every shard takes part in both gathers and uses a row of each (scaled by 0 at the ends),
  // so every rank runs the same collectives in backward too.
  std::vector<torch::Tensor> pieces;
  if (before > 0) {
    auto tails = s->all_gather(x.narrow(-1, L - before, before));
    pieces.push_back(tails.select(0, std::max<int64_t>(i - 1, 0)) * (i > 0 ? 1.0 : 0.0));
  }
  pieces.push_back(x);
  if (after > 0) {
    auto heads = s->all_gather(x.narrow(-1, 0, after));
    pieces.push_back(heads.select(0, std::min(i + 1, C - 1)) * (i + 1 < C ? 1.0 : 0.0));
  }
  return pieces.size() == 1 ? x : torch::cat(pieces, -1);
}

double split_mean_weight(double local_count) {
  const auto* s = sequence_split();
  if (!s) return 1.0;
  const double total = s->sum(local_count);
  return total > 0 ? static_cast<double>(s->parts()) * local_count / total : 1.0;
}

}  // namespace herd
