// herd bench blocks: each mixer block alone, as its paper config builds it, at one d_model and
// a list of lengths: forward (no grad), forward + backward, and the peak memory growth of a
// forward + backward, median of --iters runs after --warmup, all in one process.
#include "cli/bench_cmds.h"

#include <filesystem>
#include <iostream>
#include <map>

#include "cli/bench_common.h"
#include "cli/bench_profile.h"
#include "config/config.h"
#include "core/error.h"
#include "core/mem_stats.h"
#include "models/block.h"
#include "train/runtime.h"

namespace herd::cli::bench {
namespace fs = std::filesystem;
namespace {

// The paper config whose mixer options each benchmarked mixer takes (configs/*.yaml).
const std::map<std::string, std::string>& paper_configs() {
  static const std::map<std::string, std::string> m = {{"attention", "gpt-125m.yaml"},
                                                       {"hyena", "hyena-153m.yaml"},
                                                       {"m2", "m2-bert-base-80m.yaml"},
                                                       {"h3", "h3-125m.yaml"},
                                                       {"primer", "primer-125m.yaml"}};
  return m;
}

struct BuiltMixer {
  SequenceMixer module;
  bool causal;
  std::string source;
};

// The config's default mixer (model.mixer) at d_model, with max_seq_len = the longest length.
// Heads keep the paper's head width (gpt-125m: 768 / 12 = 64).
BuiltMixer build(const std::string& name, const std::string& configs_dir, int64_t d_model,
                 int64_t max_len) {
  const auto it = paper_configs().find(name);
  if (it == paper_configs().end()) {
    std::string names;
    for (const auto& [n, f] : paper_configs()) names += (names.empty() ? "" : ", ") + n;
    throw Error(str("--mixers: unknown mixer \"", name, "\" (expected some of ", names, ")"));
  }
  const std::string path = (fs::path(configs_dir) / it->second).string();
  HERD_CHECK(fs::exists(path), path, ": paper config not found (pass --configs DIR)");
  Config paper = load_config(path);
  HERD_CHECK(paper.model.mixer.type == name, path, ": model.mixer.type is ", paper.model.mixer.type,
             ", expected ", name);
  const int64_t head_dim = paper.model.d_model / paper.model.n_head;
  const bool heads = name == "attention" || name == "primer";
  HERD_CHECK(!heads || d_model % head_dim == 0, "--d-model ", d_model, ": must be a multiple of ",
             path, "'s head width ", head_dim);
  MixerContext ctx;
  ctx.d_model = d_model;
  ctx.n_head = d_model % head_dim == 0 ? d_model / head_dim : 1;
  ctx.max_seq_len = max_len;
  ctx.causal = paper.model.stack == "gpt";
  ctx.n_layer = paper.model.n_layer;
  MixerSpec spec = paper.model.mixer;
  // Explicit head counts in the mixer options follow the head width too.
  if (spec.options["n_head"]) spec.options["n_head"] = ctx.n_head;
  return {build_mixer(spec, ctx), ctx.causal, it->second};
}

struct Row {
  std::string mixer;
  int64_t L;
  double fwd_ms, fwd_bwd_ms, peak_mb;
};

}  // namespace

void run_blocks_bench(const BlocksArgs& a) {
  const torch::Device dev = parse_device(a.device);
  HERD_CHECK(a.dtype == "float32" || a.dtype == "bfloat16",
             "--dtype: expected float32|bfloat16, got \"", a.dtype, "\"");
  HERD_CHECK(!a.lengths.empty() && !a.mixers.empty(), "--lengths and --mixers must not be empty");
  for (int64_t L : a.lengths) HERD_CHECK(L >= 1, "--lengths: expected positive lengths, got ", L);
  HERD_CHECK(a.d_model >= 1 && a.batch >= 1, "--d-model and --batch must be positive");
  if (dev.is_cpu()) mem::track_cpu();
  print_machine(std::cout);
  const int64_t max_len = *std::max_element(a.lengths.begin(), a.lengths.end());
  Runtime rt;
  rt.device = dev;
  if (a.dtype == "bfloat16") rt.autocast_dtype = torch::kBFloat16;  // as train.precision: bf16
  std::cout << "\nmixer blocks alone: d_model " << a.d_model << ", batch " << a.batch << ", "
            << a.dtype << (a.dtype == "bfloat16" ? " (autocast, fp32 parameters)" : "") << ", "
            << dev.str() << ", median of " << a.iters << " after " << a.warmup << " warmup\n";
  std::printf("%-10s %-22s %7s %12s %12s %10s\n", "mixer", "options from", "L", "fwd ms",
              "fwd+bwd ms", "peak MB");
  std::vector<JsonObject> json;
  for (const auto& name : a.mixers) {
    torch::manual_seed(0);
    BuiltMixer m = build(name, a.configs_dir, a.d_model, max_len);
    m.module->to(dev);
    for (int64_t L : a.lengths) {
      torch::manual_seed(1);
      auto x = torch::randn({a.batch, L, a.d_model}, torch::TensorOptions().device(dev))
                   .requires_grad_(true);
      auto g = torch::randn_like(x);
      auto fwd = [&] {
        torch::NoGradGuard no_grad;
        AutocastScope ac(rt);
        m.module->forward(x);
      };
      auto fwd_bwd = [&] {
        for (auto& p : m.module->parameters()) p.mutable_grad() = torch::Tensor();
        x.mutable_grad() = torch::Tensor();
        torch::Tensor y;
        {
          AutocastScope ac(rt);
          y = m.module->forward(x);
        }
        y.backward(g.to(y.scalar_type()));
      };
      Row r{name, L, 0, 0, 0};
      r.fwd_ms = time_ms(fwd, dev, a.warmup, a.iters);
      r.fwd_bwd_ms = time_ms(fwd_bwd, dev, a.warmup, a.iters);
      // Peak growth of one forward + backward over what is allocated before it (parameters,
      // input, the gradients of the last run are released first).
      for (auto& p : m.module->parameters()) p.mutable_grad() = torch::Tensor();
      x.mutable_grad() = torch::Tensor();
      sync(dev);
      const int64_t base = mem::allocated_bytes(dev);
      mem::reset_peak(dev);
      fwd_bwd();
      sync(dev);
      r.peak_mb = static_cast<double>(mem::peak_bytes(dev) - base) / (1 << 20);
      std::printf("%-10s %-22s %7lld %12.2f %12.2f %10.1f\n", name.c_str(), m.source.c_str(),
                  static_cast<long long>(L), r.fwd_ms, r.fwd_bwd_ms, r.peak_mb);
      std::fflush(stdout);
      if (!a.profile_dir.empty())
        profile_once(fwd_bwd, (fs::path(a.profile_dir) / str(name, "-L", L, ".json")).string(),
                     std::cout);
      json.push_back(JsonObject()
                         .text("mixer", name)
                         .integer("L", L)
                         .integer("d_model", a.d_model)
                         .integer("batch", a.batch)
                         .text("dtype", a.dtype)
                         .text("device", dev.is_cuda() ? "cuda" : "cpu")
                         .num("fwd_ms", r.fwd_ms)
                         .num("fwd_bwd_ms", r.fwd_bwd_ms)
                         .num("peak_mb", r.peak_mb));
    }
  }
  if (!a.json.empty()) {
    write_json_list(a.json, json);
    std::cout << "wrote " << a.json << "\n";
  }
}

}  // namespace herd::cli::bench
