// herd bench ops|blocks|train: flags and examples; each benchmark lives in its own file
// (bench_ops.cpp, bench_blocks.cpp, bench_train.cpp). No timing ever goes in a test.
#include <unistd.h>

#include <climits>
#include <filesystem>

#include "cli/bench_cmds.h"
#include "cli/commands.h"
#include "core/error.h"
#include "dist/launcher.h"

namespace herd::cli {
namespace {

// configs/ next to the build directory of this binary (build/herd -> ../configs), else ./configs.
std::string default_configs_dir() {
  namespace fs = std::filesystem;
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = 0;
    for (auto d = fs::path(buf).parent_path(); !d.empty() && d != d.root_path();
         d = d.parent_path())
      if (fs::exists(d / "configs" / "gpt-125m.yaml")) return (d / "configs").string();
  }
  return "configs";
}

void add_ops(CLI::App* bench) {
  auto a = std::make_shared<bench::OpsArgs>();
  auto* cmd = bench->add_subcommand(
      "ops", "Time each fused op against its ATen reference (median of --iters runs)");
  cmd->add_option("--device", a->device, "Where to run")
      ->check(CLI::IsMember({"cpu", "cuda", "all"}));
  cmd->add_option("--ops", a->ops, "Only these ops (default: all)")->delimiter(',');
  cmd->add_option("--warmup", a->warmup, "Untimed runs first")->check(CLI::NonNegativeNumber);
  cmd->add_option("--iters", a->iters, "Timed runs (the median is printed)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--json", a->json, "Also write the rows to this JSON file");
  cmd->footer("Example:\n  herd bench ops --device cpu --iters 20 --json ops.json");
  cmd->callback([a] { bench::run_ops_bench(*a); });
}

void add_blocks(CLI::App* bench) {
  auto a = std::make_shared<bench::BlocksArgs>();
  auto* cmd = bench->add_subcommand(
      "blocks", "Time each mixer block alone with its paper config's options, per length");
  cmd->add_option("--mixers", a->mixers, "Mixers (attention,hyena,m2,h3,primer)")->delimiter(',');
  cmd->add_option("--lengths", a->lengths, "Sequence lengths")->delimiter(',');
  cmd->add_option("--d-model", a->d_model, "Model width")->check(CLI::PositiveNumber);
  cmd->add_option("--batch", a->batch, "Batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", a->dtype, "float32, or bfloat16 (autocast as train.precision: bf16)")
      ->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_option("--device", a->device, "Where to run")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--warmup", a->warmup, "Untimed runs first")->check(CLI::NonNegativeNumber);
  cmd->add_option("--iters", a->iters, "Timed runs (the median is printed)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--json", a->json,
                  "Also write a list of {mixer, L, d_model, batch, dtype, device, fwd_ms, "
                  "fwd_bwd_ms, peak_mb} to this file");
  cmd->add_option("--configs", a->configs_dir, "Folder of the paper configs (default: the repo's)");
  cmd->add_option("--profile", a->profile_dir,
                  "Also profile one forward+backward per mixer and length: a chrome trace "
                  "DIR/<mixer>-L<L>.json and the ops with the most self time");
  cmd->footer(
      "Example:\n  herd bench blocks --mixers hyena,attention --lengths 1024,8192 --json b.json\n"
      "  herd bench blocks --mixers m2 --lengths 8192 --profile runs/prof   # where the time goes");
  cmd->callback([a] {
    if (a->configs_dir.empty()) a->configs_dir = default_configs_dir();
    bench::run_blocks_bench(*a);
  });
}

void add_train_bench(CLI::App* bench) {
  auto a = std::make_shared<bench::TrainArgs>();
  auto* cmd = bench->add_subcommand(
      "train",
      "Real training steps of a config: tokens/s, FLOP/s, MFU against the measured "
      "GEMM peak, peak memory");
  cmd->add_option("config", a->config, "YAML config")->required()->check(CLI::ExistingFile);
  cmd->add_option("--set", a->overrides, "Override a config value: key.path=value (repeatable)");
  cmd->add_option("--steps", a->steps, "Timed steps (the median is reported)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--warmup-steps", a->warmup_steps, "Untimed steps first")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--json", a->json, "Also write the figures to this JSON file");
  cmd->add_option("--profile", a->profile_dir,
                  "Afterwards, profile --profile-steps more steps in a separate run (from a fresh "
                  "model, so the first includes warm-up): DIR/train.json and the ops with the "
                  "most self time");
  cmd->add_option("--profile-steps", a->profile_steps, "Steps of the profiled run")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--nproc-per-node", a->nproc,
                  "Run data-parallel on this many ranks (rank 0 reports; memory per rank)")
      ->check(CLI::PositiveNumber);
  cmd->footer(
      "Example:\n  herd bench train configs/quickstart.yaml --steps 20\n"
      "  herd bench train configs/gpt-125m.yaml --set data.dir=runs/data/fortunes "
      "--set train.batch_size=4 --set data.seq_len=512 --steps 5\n"
      "  herd bench train configs/gpt-125m.yaml --nproc-per-node 2 --set train.zero=1");
  cmd->callback([a] {
    if (a->nproc > 0) {
      HERD_CHECK(a->profile_dir.empty(),
                 "--profile with --nproc-per-node: profile on one rank (drop --nproc-per-node)");
      dist::launch_this_command(a->nproc);
      return;
    }
    bench::run_train_bench(*a);
  });
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks: fused ops, mixer blocks, training steps");
  bench->require_subcommand(1);
  add_ops(bench);
  add_blocks(bench);
  add_train_bench(bench);
  add_generate_bench(bench);
}

}  // namespace herd::cli
