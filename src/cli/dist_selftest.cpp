// herd dist-selftest (hidden): checks of src/dist that need several real processes, run by the
// test suite as `herd dist-selftest grad-sync --out DIR --nproc-per-node 2` (and `zero
// --stage 1|2`, `context`). Each rank writes DIR/rank<R>.txt with what it measured; the tests
// assert on those numbers.
#include <fstream>
#include <functional>

#include "cli/commands.h"
#include "core/error.h"
#include "dist/grad_sync.h"
#include "dist/launcher.h"
#include "dist/world.h"
#include "dist/zero.h"
#include "ops/adamw.h"
#include "train/step_totals.h"

namespace herd::cli {
namespace {

struct Mlp : torch::nn::Module {
  Mlp(int64_t in = 6, int64_t hidden = 16, int64_t out = 3) {
    a = register_module("a", torch::nn::Linear(in, hidden));
    b = register_module("b", torch::nn::Linear(hidden, hidden));
    c = register_module("c", torch::nn::Linear(hidden, out));
    unused = register_parameter("unused", torch::ones({4}));  // never in the graph
  }
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::tanh(b(torch::tanh(a(x))))); }
  torch::nn::Linear a{nullptr}, b{nullptr}, c{nullptr};
  torch::Tensor unused;
};

double max_grad_diff(Mlp& x, Mlp& y) {
  double d = 0;
  auto px = x.parameters(), py = y.parameters();
  for (size_t i = 0; i < px.size(); ++i) {
    if (!px[i].grad().defined() && !py[i].grad().defined()) continue;
    auto gx = px[i].grad().defined() ? px[i].grad() : torch::zeros_like(px[i]);
    auto gy = py[i].grad().defined() ? py[i].grad() : torch::zeros_like(py[i]);
    d = std::max(d, (gx - gy).abs().max().item<double>());
  }
  return d;
}

void copy_parameters(Mlp& from, Mlp& to) {
  torch::NoGradGuard g;
  auto src = from.parameters(), dst = to.parameters();
  for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
}

dist::World join_gloo() {
  dist::WorldOptions o;
  o.backend = "gloo";
  o.timeout_s = 60;
  return dist::World(dist::detect_env(), o);
}

// Gradient sync over a global batch of 8 rows, 2 micro-steps per rank, float64, against the
// single-process gradient over all 8 rows computed here from rank 0's broadcast weights.
void grad_sync_check(const std::string& out_dir) {
  dist::World world = join_gloo();
  torch::manual_seed(7 + world.rank());  // ranks start different: broadcast must fix that
  Mlp model;
  model.to(torch::kFloat64);
  world.broadcast_parameters(model);
  torch::manual_seed(11);
  const int64_t B = 8, W = world.size(), local = B / W;
  HERD_CHECK(B % W == 0, "dist-selftest: world size must divide 8");
  auto x = torch::randn({B, 6}, torch::kFloat64), y = torch::randn({B, 3}, torch::kFloat64);
  auto mine_x = x.narrow(0, world.rank() * local, local),
       mine_y = y.narrow(0, world.rank() * local, local);

  dist::GradSync sync(world, model.parameters(), /*bucket_cap_mb=*/0.001);  // ~4 buckets
  const int64_t accum = local >= 2 ? 2 : 1, mb = local / accum;
  int64_t after_first = -1;
  const int64_t before = world.collectives();
  for (int64_t m = 0; m < accum; ++m) {
    sync.before_backward(m + 1 == accum);
    auto loss =
        torch::mse_loss(model.forward(mine_x.narrow(0, m * mb, mb)), mine_y.narrow(0, m * mb, mb));
    (loss / static_cast<double>(accum)).backward();
    if (m == 0) after_first = world.collectives() - before;
  }
  const int64_t during_backward = world.collectives() - before;
  sync.wait();

  Mlp ref;
  ref.to(torch::kFloat64);
  copy_parameters(model, ref);
  torch::mse_loss(ref.forward(x), y).backward();
  const double diff = max_grad_diff(model, ref);
  double norm = 0;
  for (auto& p : ref.parameters())
    if (p.grad().defined()) norm += p.grad().pow(2).sum().item<double>();

  torch::optim::SGD opt(model.parameters(), torch::optim::SGDOptions(0.1));
  opt.step();
  world.check_parameters_identical(model, "after the self-test step");

  std::ofstream f(out_dir + "/rank" + std::to_string(world.rank()) + ".txt");
  f << "world " << W << "\nbuckets " << sync.num_buckets() << "\nmicro_steps " << accum
    << "\ncollectives_after_first_micro_step " << (accum > 1 ? after_first : 0)
    << "\ncollectives_during_backward " << during_backward << "\nmax_grad_diff " << diff
    << "\nref_grad_norm2 " << norm << "\n";
  HERD_CHECK(f.good(), out_dir, ": could not write the self-test result");
}

// Three AdamW groups of their own lr and weight decay over Mlp(5, 7, 3): the hidden weights,
// the hidden biases, and the output layer with the unused parameter.
const std::vector<double> kGroupLr{1e-2, 2e-2, 5e-3};
std::unique_ptr<ops::FusedAdamW> three_group_adamw(Mlp& m, ops::WeightDecayRule rule) {
  const std::vector<std::vector<torch::Tensor>> params{
      {m.a->weight, m.b->weight}, {m.a->bias, m.b->bias}, {m.c->weight, m.c->bias, m.unused}};
  const std::vector<double> wd{0.1, 0.0, 0.3};
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (size_t g = 0; g < params.size(); ++g)
    groups.emplace_back(
        params[g],
        std::make_unique<torch::optim::AdamWOptions>(
            torch::optim::AdamWOptions(kGroupLr[g]).betas({0.9, 0.95}).weight_decay(wd[g])));
  return std::make_unique<ops::FusedAdamW>(groups, torch::optim::AdamWOptions(kGroupLr[0]), rule);
}

double max_param_diff(Mlp& x, Mlp& y) {
  double d = 0;
  auto px = x.parameters(), py = y.parameters();
  for (size_t i = 0; i < px.size(); ++i)
    d = std::max(d, (px[i] - py[i]).abs().max().item<double>());
  return d;
}

// Gathered m, v (rank 0) against the single process's full state.
double max_state_diff(const torch::optim::Optimizer& gathered, Mlp& sharded,
                      const torch::optim::Optimizer& full, Mlp& one) {
  double d = 0;
  auto ps = sharded.parameters(), po = one.parameters();
  for (size_t i = 0; i < ps.size(); ++i) {
    const auto& a = static_cast<const torch::optim::AdamWParamState&>(
        *gathered.state().at(ps[i].unsafeGetTensorImpl()));
    const auto& b = static_cast<const torch::optim::AdamWParamState&>(
        *full.state().at(po[i].unsafeGetTensorImpl()));
    HERD_CHECK(a.step() == b.step(), "dist-selftest: gathered step ", a.step(), " vs ", b.step());
    d = std::max(d, (a.exp_avg() - b.exp_avg()).abs().max().item<double>());
    d = std::max(d, (a.exp_avg_sq() - b.exp_avg_sq()).abs().max().item<double>());
  }
  return d;
}

// ZeRO-`stage` (sharded), plain data parallel and one process over all 12 rows, side by side
// for 4 steps in float64: odd-sized parameters, three groups, a changing lr (the decoupled
// weight-decay rule under stage 2), 2 micro-steps per rank and clipping that bites.
void zero_check(const std::string& out_dir, int stage) {
  dist::World world = join_gloo();
  const int64_t B = 12, W = world.size(), local = B / W, accum = 2, mb = local / accum;
  HERD_CHECK(B % W == 0 && local % accum == 0, "dist-selftest zero: 1, 2, 3 or 6 ranks");
  torch::manual_seed(5 + world.rank());
  Mlp sharded(5, 7, 3), dp(5, 7, 3), one(5, 7, 3), start(5, 7, 3);
  for (Mlp* m : {&sharded, &dp, &one, &start}) m->to(torch::kFloat64);
  world.broadcast_parameters(sharded);
  for (Mlp* m : {&dp, &one, &start}) copy_parameters(sharded, *m);
  torch::manual_seed(11);
  auto x = torch::randn({B, 5}, torch::kFloat64), y = torch::randn({B, 3}, torch::kFloat64);

  const double cap_mb = 0.0002;  // ~26 doubles a bucket: parameters straddle the slices
  dist::GradSync zsync(world, sharded.parameters(), cap_mb, stage),
      dsync(world, dp.parameters(), cap_mb, 0);
  const auto rule = stage == 2 ? ops::WeightDecayRule::decoupled : ops::WeightDecayRule::lr_scaled;
  dist::ShardedAdamW zopt(*three_group_adamw(sharded, rule), zsync, world, kGroupLr);
  auto dopt = three_group_adamw(dp, rule), oopt = three_group_adamw(one, rule);
  const double clip = 0.05;
  double norm_diff = 0, first_norm = 0;
  int64_t grads_left = 0, buckets_held = -1;
  for (int step = 0; step < 4; ++step) {
    for (torch::optim::Optimizer* o : {static_cast<torch::optim::Optimizer*>(&zopt),
                                       static_cast<torch::optim::Optimizer*>(dopt.get()),
                                       static_cast<torch::optim::Optimizer*>(oopt.get())}) {
      for (size_t g = 0; g < kGroupLr.size(); ++g)
        o->param_groups()[g].options().set_lr(kGroupLr[g] * (1.0 - 0.15 * step));
      o->zero_grad();
    }
    for (int64_t m = 0; m < accum; ++m) {
      const int64_t row = world.rank() * local + m * mb;
      auto xm = x.narrow(0, row, mb), ym = y.narrow(0, row, mb);
      zsync.before_backward(m + 1 == accum);
      (torch::mse_loss(sharded.forward(xm), ym) / static_cast<double>(accum)).backward();
      dsync.before_backward(m + 1 == accum);
      (torch::mse_loss(dp.forward(xm), ym) / static_cast<double>(accum)).backward();
    }
    zsync.wait();
    dsync.wait();
    grads_left = 0;
    buckets_held = zsync.held_bucket_numel();
    for (auto& p : sharded.parameters()) grads_left += p.grad().defined();
    torch::mse_loss(one.forward(x), y).backward();
    for (auto& p : one.parameters())  // as data parallel: the unused parameter's grad is zero
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    const double zn = zopt.clip_grad_norm(clip).item<double>();
    const double dn = clip_grad_norm(dp.parameters(), clip).item<double>();
    const double on = clip_grad_norm(one.parameters(), clip).item<double>();
    if (step == 0) first_norm = on;
    norm_diff = std::max({norm_diff, std::abs(zn - on), std::abs(dn - on)});
    zopt.step();
    dopt->step();
    oopt->step();
  }
  world.check_parameters_identical(sharded, "after the ZeRO self-test steps");
  double state_diff = 0;
  {
    dist::GatheredState full(&zopt);
    if (world.is_main()) state_diff = max_state_diff(zopt, sharded, *oopt, one);
  }
  int64_t numel = 0, straddling = 0, uneven_buckets = 0;
  for (auto& p : sharded.parameters()) numel += p.numel();
  for (size_t i = 0; i < zsync.num_params(); ++i) {
    const int64_t S = zsync.shard_numel(zsync.bucket_of(i)), o = zsync.offset_of(i);
    straddling += o / S != (o + zsync.param(i).numel() - 1) / S;
  }
  for (size_t b = 0; b < zsync.num_buckets(); ++b) {
    int64_t used = 0;
    for (size_t i : zsync.bucket_params(b)) used += zsync.param(i).numel();
    uneven_buckets += used % W != 0;
  }
  std::ofstream f(out_dir + "/rank" + std::to_string(world.rank()) + ".txt");
  f << "world " << W << "\nbuckets " << zsync.num_buckets() << "\nuneven_buckets " << uneven_buckets
    << "\nstraddling_params " << straddling << "\nparams " << numel << "\nstate_numel "
    << zopt.state_numel() << "\ngrads_left_after_backward " << grads_left
    << "\nbucket_numel_held_after_backward " << buckets_held << "\nfirst_grad_norm " << first_norm
    << "\nclip " << clip << "\nmax_norm_diff " << norm_diff << "\nzero_vs_one "
    << max_param_diff(sharded, one) << "\nzero_vs_dp " << max_param_diff(sharded, dp)
    << "\ndp_vs_one " << max_param_diff(dp, one) << "\ngathered_state_vs_one " << state_diff
    << "\nmoved " << max_param_diff(sharded, start) << "\n";
  HERD_CHECK(f.good(), out_dir, ": could not write the self-test result");
}

}  // namespace

void context_parallel_check(const std::string& out_dir);  // dist_selftest_context.cpp

void add_dist_selftest(CLI::App& app) {
  auto* cmd = app.add_subcommand("dist-selftest", "Multi-process checks of src/dist (tests)");
  cmd->group("");  // hidden from --help
  struct Args {
    std::string out;
    int nproc = 0, stage = 1;
  };
  auto args = std::make_shared<Args>();
  auto add = [&](const std::string& name, const std::string& what,
                 std::function<void(const Args&)> check) {
    auto* sub = cmd->add_subcommand(name, what);
    sub->add_option("--out", args->out, "Directory for rank<R>.txt")->required();
    sub->add_option("--nproc-per-node", args->nproc, "Start this many ranks");
    sub->callback([args, check] {
      if (args->nproc > 0) {
        dist::launch_this_command(args->nproc);
        return;
      }
      check(*args);
    });
    return sub;
  };
  add("grad-sync", "Synced gradients vs one process",
      [](const Args& a) { grad_sync_check(a.out); });
  add("zero", "ZeRO-1/2 vs plain data parallel and one process",
      [](const Args& a) { zero_check(a.out, a.stage); })
      ->add_option("--stage", args->stage, "ZeRO stage, 1 or 2")
      ->check(CLI::Range(1, 2));
  add("context", "Context-parallel blocks and models vs the unsplit run",
      [](const Args& a) { context_parallel_check(a.out); });
}

}  // namespace herd::cli
