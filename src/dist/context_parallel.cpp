#include "dist/context_parallel.h"

#include <torch/csrc/autograd/custom_function.h>

#include "blocks/mixer.h"
#include "core/error.h"

namespace herd::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

const ContextGroup& group_of(AutogradContext* ctx) {
  return *reinterpret_cast<const ContextGroup*>(ctx->saved_data["group"].toInt());
}

// x split along split_dim into C pieces, exchanged, the received pieces concatenated along
// cat_dim.
torch::Tensor exchange_pieces(const ContextGroup& g, const torch::Tensor& x, int64_t split_dim,
                              int64_t cat_dim) {
  HERD_CHECK(x.size(split_dim) % g.parts() == 0, "context parallel: dimension ", split_dim, " of ",
             x.sizes(), " does not split among ", g.parts(), " shards");
  auto received = g.exchange(torch::stack(x.chunk(g.parts(), split_dim), 0));
  return torch::cat(received.unbind(0), cat_dim);
}

struct AllToAll : torch::autograd::Function<AllToAll> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group,
                               int64_t split_dim, int64_t cat_dim) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["split"] = split_dim;
    ctx->saved_data["cat"] = cat_dim;
    return exchange_pieces(group_of(ctx), x, split_dim, cat_dim);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto g = exchange_pieces(group_of(ctx), grad[0], ctx->saved_data["cat"].toInt(),
                                   ctx->saved_data["split"].toInt());
    return {g, {}, {}, {}};
  }
};

struct AllGather : torch::autograd::Function<AllGather> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return group_of(ctx).gather(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto& g = group_of(ctx);
    auto total = grad[0].contiguous().clone();  // every shard's use of this shard's x
    g.sum_in_place(total);
    return {total.select(0, g.index()), {}};
  }
};

}  // namespace

ContextGroup::ContextGroup(World& world, int64_t parts)
    : world_(world), parts_(parts), index_(world.rank() % parts) {
  HERD_CHECK(parts >= 2 && world.size() % parts == 0, "train.context_parallel: ", parts,
             " does not divide the world size ", world.size());
  const int first = static_cast<int>(world.rank() - index_);
  pg_ = world.new_group("context", first, static_cast<int>(parts));
}

torch::Tensor ContextGroup::all_to_all(const torch::Tensor& x, int64_t split_dim,
                                       int64_t cat_dim) const {
  split_dim = c10::maybe_wrap_dim(split_dim, x.dim());
  cat_dim = c10::maybe_wrap_dim(cat_dim, x.dim());
  return AllToAll::apply(x, reinterpret_cast<int64_t>(this), split_dim, cat_dim);
}

torch::Tensor ContextGroup::all_gather(const torch::Tensor& x) const {
  return AllGather::apply(x, reinterpret_cast<int64_t>(this));
}

torch::Tensor ContextGroup::exchange(const torch::Tensor& send) const {
  auto in = send.contiguous();
  auto out = torch::empty_like(in);
  std::vector<int64_t> equal;  // empty: equal rows
  world_.count_collective();
  try {
    pg_->alltoall_base(out, in, equal, equal)->wait();
  } catch (const std::exception& e) {
    world_.fail("context-parallel all-to-all", e);
  }
  return out;
}

torch::Tensor ContextGroup::gather(const torch::Tensor& x) const {
  auto in = x.contiguous();
  std::vector<int64_t> shape{parts_};
  for (int64_t s : in.sizes()) shape.push_back(s);
  // The backends take the output as the inputs concatenated along dim 0.
  auto out = torch::empty({parts_ * in.numel()}, in.options());
  auto flat = in.view({-1});
  world_.count_collective();
  try {
    pg_->_allgather_base(out, flat)->wait();
  } catch (const std::exception& e) {
    world_.fail("context-parallel all-gather", e);
  }
  return out.view(shape);
}

void ContextGroup::sum_in_place(torch::Tensor& t) const {
  std::vector<at::Tensor> v{t};
  world_.count_collective();
  try {
    pg_->allreduce(v)->wait();
  } catch (const std::exception& e) {
    world_.fail("context-parallel all-reduce", e);
  }
}

double ContextGroup::sum(double x) const {
  auto t =
      torch::full({1}, x, torch::TensorOptions().dtype(torch::kFloat64).device(world_.device()));
  sum_in_place(t);
  return t.cpu().item<double>();
}

void check_context_parallel(const Config& cfg, int world_size, const std::string& task_type,
                            int64_t seq_len, torch::nn::Module& model) {
  const int64_t C = cfg.train.context_parallel;
  if (C == 1) return;
  const std::string key = str(cfg.source, " train.context_parallel: ", C);
  HERD_CHECK(world_size % C == 0, key, " does not divide the world size ", world_size,
             " (ranks = data parallel x context parallel)");
  HERD_CHECK(task_type == "lm" || task_type == "mlm", key, ": the ", task_type,
             " task has no context-parallel path (lm and mlm split their sequences)");
  const int64_t L = seq_len;
  HERD_CHECK(L % C == 0, key, " does not divide the sequence length ", L,
             " (data.seq_len, else model.max_seq_len)");
  for (const auto& named : model.named_modules("", /*include_self=*/false)) {
    const auto* mixer = dynamic_cast<const SequenceMixerImpl*>(named.value().get());
    if (!mixer) continue;
    const std::string why = mixer->context_parallel_refusal(C, L / C);
    HERD_CHECK(why.empty(), key, ": the mixer ", named.key(), " ", why);
  }
}

}  // namespace herd::dist
