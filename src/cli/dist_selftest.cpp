// herd dist-selftest (hidden): checks of src/dist that need several real processes, run by the
// test suite as `herd dist-selftest grad-sync --out DIR --nproc-per-node 2`. Each rank writes
// DIR/rank<R>.txt with what it measured; the tests assert on those numbers.
#include <fstream>

#include "cli/commands.h"
#include "core/error.h"
#include "dist/grad_sync.h"
#include "dist/launcher.h"
#include "dist/world.h"

namespace herd::cli {
namespace {

struct Mlp : torch::nn::Module {
  Mlp() {
    a = register_module("a", torch::nn::Linear(6, 16));
    b = register_module("b", torch::nn::Linear(16, 16));
    c = register_module("c", torch::nn::Linear(16, 3));
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

// Gradient sync over a global batch of 8 rows, 2 micro-steps per rank, float64, against the
// single-process gradient over all 8 rows computed here from rank 0's broadcast weights.
void grad_sync_check(const std::string& out_dir) {
  const auto env = dist::detect_env();
  dist::WorldOptions o;
  o.backend = "gloo";
  o.timeout_s = 60;
  dist::World world(env, o);
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
    sync.set_sync(m + 1 == accum);
    auto loss =
        torch::mse_loss(model.forward(mine_x.narrow(0, m * mb, mb)), mine_y.narrow(0, m * mb, mb));
    (loss / static_cast<double>(accum)).backward();
    if (m == 0) after_first = world.collectives() - before;
  }
  const int64_t during_backward = world.collectives() - before;
  sync.wait();

  Mlp ref;
  ref.to(torch::kFloat64);
  {
    torch::NoGradGuard g;
    auto src = model.parameters(), dst = ref.parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
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

}  // namespace

void add_dist_selftest(CLI::App& app) {
  auto* cmd = app.add_subcommand("dist-selftest", "Multi-process checks of src/dist (tests)");
  cmd->group("");  // hidden from --help
  auto* grad = cmd->add_subcommand("grad-sync", "Synced gradients vs one process");
  struct Args {
    std::string out;
    int nproc = 0;
  };
  auto args = std::make_shared<Args>();
  grad->add_option("--out", args->out, "Directory for rank<R>.txt")->required();
  grad->add_option("--nproc-per-node", args->nproc, "Start this many ranks");
  grad->callback([args] {
    if (args->nproc > 0) {
      dist::LaunchOptions o;
      o.nproc = args->nproc;
      o.args = dist::own_args_without("--nproc-per-node");
      dist::launch(o);
      return;
    }
    grad_sync_check(args->out);
  });
}

}  // namespace herd::cli
