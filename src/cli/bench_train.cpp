// herd bench train: real training steps of a config (the trainer's own loop, no checkpoints,
// evaluation or samples), with tokens/s of the median step, achieved FLOP/s by config check's
// FLOPs/token formula, the GEMM peak measured in the same run, their ratio (MFU), peak memory.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/bench_cmds.h"
#include "cli/bench_common.h"
#include "cli/bench_profile.h"
#include "core/error.h"
#include "core/mem_stats.h"
#include "dist/env.h"
#include "train/runtime.h"
#include "train/trainer.h"

namespace herd::cli::bench {
namespace fs = std::filesystem;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A fresh run directory under the system temp dir, removed when the bench ends.
struct TempRunDir {
  std::string path;
  TempRunDir() {
    std::string tmpl = (fs::temp_directory_path() / "herd-bench-XXXXXX").string();
    HERD_CHECK(mkdtemp(tmpl.data()) != nullptr, "bench train: cannot create a temp run dir");
    path = tmpl;
  }
  ~TempRunDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

void run_train_bench(const TrainArgs& a) {
  HERD_CHECK(a.steps >= 1, "--steps: expected a positive number, got ", a.steps);
  HERD_CHECK(a.warmup_steps >= 0, "--warmup-steps: expected >= 0, got ", a.warmup_steps);
  auto overrides = a.overrides;
  // Timed steps only: nothing periodic, and the schedule length is what is run.
  for (const char* o : {"train.eval_every=0", "checkpoint.every=0", "train.sample_every=0",
                        "train.sample_tokens=0"})
    overrides.push_back(o);
  overrides.push_back(str("train.steps=", a.steps + a.warmup_steps));
  Config cfg = load_config(a.config, overrides);
  const Runtime rt = Runtime::from(cfg.train);
  if (cfg.train.threads > 0) torch::set_num_threads(static_cast<int>(cfg.train.threads));
  if (rt.device.is_cpu()) mem::track_cpu();
  const bool main_rank = dist::detect_env().rank == 0;  // [dist] --nproc-per-node: rank 0 reports
  if (main_rank) print_machine(std::cout);

  // The peak the ratio is taken against, measured now, on this device, in the compute dtype.
  // Measured before and after the steps; the higher counts (a busy machine only lowers it).
  const auto peak_dtype = rt.autocast_dtype ? *rt.autocast_dtype : rt.param_dtype;
  const double peak_before = main_rank ? gemm_peak_flops(rt.device, peak_dtype) : 0;

  TempRunDir tmp;
  RunOptions o;
  o.run_dir = a.run_dir.empty() ? tmp.path : a.run_dir;
  o.quiet = true;
  o.bench = true;
  mem::reset_peak(rt.device);  // the training's peak, not the GEMM probe's matrices
  const TrainResult r = train(cfg, o);
  if (!main_rank) return;
  const int64_t train_peak_bytes = mem::peak_bytes(rt.device);  // before the second GEMM probe
  HERD_CHECK(static_cast<int64_t>(r.step_seconds.size()) == a.steps + a.warmup_steps,
             "bench train: ran ", r.step_seconds.size(), " steps, expected ",
             a.steps + a.warmup_steps);
  const double peak_after = gemm_peak_flops(rt.device, peak_dtype);
  const double peak = std::max(peak_before, peak_after);
  std::printf(
      "gemm     %s 2048^3 peak %.1f GFLOP/s (best of 5 before the steps %.1f, after %.1f)\n",
      c10::toString(peak_dtype), peak / 1e9, peak_before / 1e9, peak_after / 1e9);
  const std::vector<double> timed(r.step_seconds.begin() + a.warmup_steps, r.step_seconds.end());
  const double step_s = median(timed);
  const double units_s = static_cast<double>(r.units_per_step) / step_s;
  const double flops_s = units_s * r.flops_per_unit;
  // Every rank has the measured peak to itself (its own threads): the ratio is per rank.
  const size_t ranks = std::max<size_t>(r.rank_peak_tensor_bytes.size(), 1);
  const double all_ranks_peak = peak * static_cast<double>(ranks);
  const double peak_rss_mb = static_cast<double>(mem::peak_rss_bytes()) / (1 << 20);
  const double peak_tensor_mb = static_cast<double>(train_peak_bytes) / (1 << 20);
  const std::string unit = r.units_per_step > 0 && cfg.model.stack == "vit" ? "images" : "tokens";

  std::printf(
      "\nconfig   %s (%s)\nsteps    %lld timed after %lld warmup; %lld %s per step\n"
      "step     median %.1f ms (min %.1f, max %.1f)\n"
      "speed    %.1f %s/s\n"
      "flops    %.3g per %s (config check's formula) -> %.1f GFLOP/s achieved\n"
      "mfu      %.1f%% of the measured %s GEMM peak%s\n"
      "memory   peak RSS %.0f MiB; peak tensor memory %.0f MiB (%s)\n"
      "loss     %.4f -> %.4f\n",
      a.config.c_str(), rt.describe().c_str(), static_cast<long long>(a.steps),
      static_cast<long long>(a.warmup_steps), static_cast<long long>(r.units_per_step),
      unit.c_str(), step_s * 1e3, *std::min_element(timed.begin(), timed.end()) * 1e3,
      *std::max_element(timed.begin(), timed.end()) * 1e3, units_s, unit.c_str(), r.flops_per_unit,
      unit == "tokens" ? "token" : "image", flops_s / 1e9, 100.0 * flops_s / all_ranks_peak,
      c10::toString(peak_dtype), ranks > 1 ? str(" x ", ranks, " ranks").c_str() : "", peak_rss_mb,
      peak_tensor_mb, rt.device.str().c_str(), r.losses.front(), r.losses.back());
  auto mib = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  for (size_t k = 0; ranks > 1 && k < ranks; ++k)
    std::printf("rank %zu   peak tensor memory %.1f MiB; peak RSS %.0f MiB\n", k,
                mib(r.rank_peak_tensor_bytes[k]), mib(r.rank_peak_rss_bytes[k]));
  if (!a.json.empty()) {
    JsonObject per_rank;
    per_rank.integer("ranks", static_cast<int64_t>(ranks))
        .integer("zero", cfg.train.zero)
        .integer("context_parallel", cfg.train.context_parallel);
    for (size_t k = 0; k < r.rank_peak_tensor_bytes.size(); ++k)
      per_rank.num(str("rank", k, "_peak_tensor_mb"), mib(r.rank_peak_tensor_bytes[k]))
          .num(str("rank", k, "_peak_rss_mb"), mib(r.rank_peak_rss_bytes[k]));
    write_json_list(a.json, {per_rank.text("config", a.config)
                                 .text("device", rt.device.is_cuda() ? "cuda" : "cpu")
                                 .text("precision", cfg.train.precision)
                                 .integer("steps", a.steps)
                                 .integer("units_per_step", r.units_per_step)
                                 .text("unit", unit)
                                 .num("step_ms", step_s * 1e3)
                                 .num("units_per_s", units_s)
                                 .num("flops_per_unit", r.flops_per_unit)
                                 .num("achieved_flops", flops_s)
                                 .num("peak_flops", peak)
                                 .num("mfu", flops_s / all_ranks_peak)
                                 .num("peak_rss_mb", peak_rss_mb)
                                 .num("peak_tensor_mb", peak_tensor_mb)});
    std::cout << "wrote " << a.json << "\n";
  }
  if (!a.profile_dir.empty()) {
    Config pcfg = load_config(a.config, [&] {
      auto o2 = overrides;
      o2.push_back(str("train.steps=", a.profile_steps));
      return o2;
    }());
    TempRunDir ptmp;
    RunOptions po = o;
    po.run_dir = ptmp.path;
    std::printf("\nprofile  %lld steps of a fresh run (self time summed over them)\n",
                static_cast<long long>(a.profile_steps));
    profile_once([&] { train(pcfg, po); },
                 (std::filesystem::path(a.profile_dir) / "train.json").string(), std::cout, 16);
  }
}

}  // namespace herd::cli::bench
