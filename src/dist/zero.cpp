#include "dist/zero.h"

#include <signal.h>

#include <cstdlib>
#include <map>

#include "core/error.h"

namespace herd::dist {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

torch::Tensor flat(const torch::Tensor& t) {
  return t.detach().view({-1});
}

// Test hook (docs/reliability.md): HERD_FAULT_KILL_IN_SHARDED_SAVE=R:N makes rank R kill
// itself halfway through gathering its N-th checkpoint's optimizer state.
bool killed_in_save_here(int rank, int64_t save) {
  const char* v = std::getenv("HERD_FAULT_KILL_IN_SHARDED_SAVE");
  if (!v || !*v) return false;
  char* end = nullptr;
  const long r = std::strtol(v, &end, 10);
  const long n = *end == ':' ? std::strtol(end + 1, nullptr, 10) : 1;
  return r == rank && n == save;
}

}  // namespace

ShardedAdamW::ShardedAdamW(const torch::optim::AdamW& plain, GradSync& sync, World& world,
                           std::vector<double> initial_lr)
    : torch::optim::AdamW(plain.param_groups(), static_cast<const AdamWOptions&>(plain.defaults())),
      sync_(sync),
      world_(world),
      initial_lr_(std::move(initial_lr)) {
  HERD_CHECK(sync_.zero() > 0, "ShardedAdamW: the gradient buckets are not sharded (zero 0)");
  HERD_CHECK(initial_lr_.size() == param_groups_.size(), "ShardedAdamW: ", initial_lr_.size(),
             " initial lrs for ", param_groups_.size(), " groups");
  if (const auto* fused = dynamic_cast<const ops::FusedAdamW*>(&plain)) rule_ = fused->rule();
  for (const auto& group : param_groups_)
    HERD_CHECK(!static_cast<const AdamWOptions&>(group.options()).amsgrad(),
               "train.zero: amsgrad is not supported with a sharded optimizer");
  build_segments();
  // A resumed plain optimizer's full state: keep this rank's slices.
  for (const auto& [key, st] : plain.state()) state_[key] = st->clone();
  adopt_state();
}

void ShardedAdamW::build_segments() {
  std::map<const void*, size_t> group_by_param;
  for (size_t g = 0; g < param_groups_.size(); ++g)
    for (const auto& p : param_groups_[g].params()) group_by_param[p.unsafeGetTensorImpl()] = g;
  const size_t n = sync_.num_params();
  group_of_.assign(n, 0);
  param_step_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    auto it = group_by_param.find(sync_.param(i).unsafeGetTensorImpl());
    HERD_CHECK(it != group_by_param.end(),
               "train.zero: a trained parameter is in no optimizer group (shape ",
               sync_.param(i).sizes(), ")");
    group_of_[i] = it->second;
  }
  segments_.resize(sync_.num_buckets());
  for (size_t b = 0; b < sync_.num_buckets(); ++b) {
    const int64_t begin = sync_.shard_begin(b), size = sync_.shard_numel(b);
    const auto options = sync_.grad_shard(b).options();
    m_.push_back(torch::zeros({size}, options));
    v_.push_back(torch::zeros({size}, options));
    for (size_t i : sync_.bucket_params(b)) {
      // The part of parameter i (at [offset, offset + numel) in the bucket) in this rank's slice.
      const int64_t offset = sync_.offset_of(i), numel = sync_.param(i).numel();
      const int64_t lo = std::max(offset, begin), hi = std::min(offset + numel, begin + size);
      if (lo >= hi) continue;
      Segment s;
      s.param = i;
      s.group = group_of_[i];
      s.shard_offset = lo - begin;
      s.param_offset = lo - offset;
      s.numel = hi - lo;
      s.state.step(0);
      s.state.exp_avg(m_[b].narrow(0, s.shard_offset, s.numel));
      s.state.exp_avg_sq(v_[b].narrow(0, s.shard_offset, s.numel));
      segments_[b].push_back(std::move(s));
    }
  }
}

int64_t ShardedAdamW::state_numel() const {
  int64_t n = 0;
  for (const auto& m : m_) n += m.numel();
  return n;
}

void ShardedAdamW::adopt_state() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < sync_.num_params(); ++i) {
    auto it = state_.find(sync_.param(i).unsafeGetTensorImpl());
    if (it == state_.end()) continue;
    const auto& st = static_cast<const AdamWParamState&>(*it->second);
    param_step_[i] = st.step();
  }
  for (auto& segments : segments_)
    for (auto& s : segments) {
      auto it = state_.find(sync_.param(s.param).unsafeGetTensorImpl());
      if (it == state_.end()) continue;
      const auto& st = static_cast<const AdamWParamState&>(*it->second);
      s.state.exp_avg().copy_(flat(st.exp_avg()).narrow(0, s.param_offset, s.numel));
      s.state.exp_avg_sq().copy_(flat(st.exp_avg_sq()).narrow(0, s.param_offset, s.numel));
    }
  state_.clear();
}

torch::Tensor ShardedAdamW::step(LossClosure closure) {
  HERD_CHECK(closure == nullptr, "train.zero: the sharded AdamW takes no closure");
  torch::NoGradGuard no_grad;
  std::vector<ops::AdamWParam> parts;
  for (size_t b = 0; b < segments_.size(); ++b)
    for (auto& s : segments_[b]) {
      s.state.step(param_step_[s.param]);
      auto& options = static_cast<AdamWOptions&>(param_groups_[s.group].options());
      parts.push_back({flat(sync_.param(s.param)).narrow(0, s.param_offset, s.numel),
                       sync_.grad_shard(b).narrow(0, s.shard_offset, s.numel), &s.state, &options,
                       rule_, initial_lr_[s.group]});
    }
  ops::adamw_step(parts);
  for (auto& step : param_step_) ++step;  // every parameter steps, as under plain data parallel
  all_gather_params();
  return {};
}

void ShardedAdamW::all_gather_params() {
  for (size_t b = 0; b < segments_.size(); ++b) {
    auto shard = torch::zeros({sync_.shard_numel(b)}, sync_.grad_shard(b).options());
    for (const auto& s : segments_[b])
      shard.narrow(0, s.shard_offset, s.numel)
          .copy_(flat(sync_.param(s.param)).narrow(0, s.param_offset, s.numel));
    auto full = torch::empty({sync_.padded_numel(b)}, shard.options());
    world_.all_gather(full, shard, "all-gather of the updated parameters");
    for (size_t i : sync_.bucket_params(b))
      flat(sync_.param(i)).copy_(full.narrow(0, sync_.offset_of(i), sync_.param(i).numel()));
  }
}

torch::Tensor ShardedAdamW::clip_grad_norm(double max_norm) {
  torch::NoGradGuard no_grad;
  auto sum_sq =
      torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(world_.device()));
  for (size_t b = 0; b < segments_.size(); ++b)
    sum_sq +=
        torch::linalg_vector_norm(sync_.grad_shard(b), 2, std::nullopt, false, torch::kFloat64)
            .pow(2)
            .to(world_.device());
  world_.finish(world_.allreduce_async(sum_sq), "all-reduce of the gradient norm");
  const auto total = sum_sq.sqrt();
  if (max_norm > 0) {
    const auto coef = torch::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
    for (size_t b = 0; b < segments_.size(); ++b)
      sync_.grad_shard(b).mul_(coef.to(sync_.grad_shard(b).dtype()));
  }
  return total;
}

void ShardedAdamW::gather_state() {
  torch::NoGradGuard no_grad;
  state_.clear();
  ++saves_;
  for (size_t b = 0; b < segments_.size(); ++b) {
    if (b == segments_.size() / 2 && killed_in_save_here(world_.rank(), saves_)) ::raise(SIGKILL);
    std::vector<torch::Tensor> full;
    for (auto* shard : {&m_[b], &v_[b]}) {
      full.push_back(torch::empty({sync_.padded_numel(b)}, shard->options()));
      world_.all_gather(full.back(), *shard, "gather of the optimizer state for a checkpoint");
    }
    if (!world_.is_main()) continue;
    for (size_t i : sync_.bucket_params(b)) {
      if (param_step_[i] == 0) continue;  // never stepped: no state, as torch's AdamW
      const auto& p = sync_.param(i);
      auto part = [&](const torch::Tensor& t) {
        return t.narrow(0, sync_.offset_of(i), p.numel())
            .view(p.sizes())
            .to(torch::TensorOptions().device(torch::kCPU), false, /*copy=*/true);
      };
      auto st = std::make_unique<AdamWParamState>();
      st->step(param_step_[i]);
      st->exp_avg(part(full[0]));
      st->exp_avg_sq(part(full[1]));
      state_[p.unsafeGetTensorImpl()] = std::move(st);
    }
  }
  gathered_ = true;
}

void ShardedAdamW::release_state() {
  state_.clear();
  gathered_ = false;
}

void ShardedAdamW::save(torch::serialize::OutputArchive& archive) const {
  HERD_CHECK(gathered_, "train.zero: the optimizer state was not gathered before saving");
  torch::optim::AdamW::save(archive);
}

void ShardedAdamW::load(torch::serialize::InputArchive& archive) {
  torch::optim::AdamW::load(archive);
  adopt_state();
}

}  // namespace herd::dist
