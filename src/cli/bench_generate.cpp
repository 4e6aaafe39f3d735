// herd bench generate: tokens/s of generation with the per-layer caches (GptImpl::step) vs
// recomputing the whole context for every token, per mixer and context length, on a GPT with
// random weights. Greedy choices, so both paths do the same work per token.
#include <chrono>
#include <iomanip>
#include <iostream>

#include "blocks/inference.h"
#include "cli/bench_common.h"
#include "cli/commands.h"
#include "config/config.h"
#include "models/gpt.h"

namespace herd::cli {
namespace {

struct GenerateArgs {
  std::vector<std::string> mixers{"attention", "primer", "hyena", "h3", "m2", "s4d"};
  std::vector<int64_t> contexts{1024, 4096};
  int64_t d_model = 256, n_layer = 2, tokens = 128, recompute_tokens = 8;
  int64_t distill = 0;  // > 0: also hyena/m2 with filters distilled into this many modes
  std::string json;
};

Gpt bench_model(const std::string& mixer, const GenerateArgs& a, int64_t context) {
  YAML::Node root;
  root["model"]["vocab_size"] = 512;
  root["model"]["d_model"] = a.d_model;
  root["model"]["n_layer"] = a.n_layer;
  root["model"]["n_head"] = 4;
  root["model"]["max_seq_len"] = context + a.tokens;
  root["model"]["mixer"]["type"] = mixer;
  Config cfg = parse_config(root, "bench generate");
  torch::manual_seed(0);
  Gpt model(cfg.model);
  model->eval();
  return model;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run(const GenerateArgs& a) {
  bench::print_machine(std::cout);
  std::vector<bench::JsonObject> rows;
  std::cout << std::left << std::setw(18) << "mixer" << std::setw(9) << "context" << std::setw(8)
            << "tokens" << std::setw(16) << "cached tok/s" << std::setw(18) << "recompute tok/s"
            << "speedup\n";
  torch::NoGradGuard no_grad;
  for (const auto& mixer : a.mixers) {
    for (const int64_t context : a.contexts) {
      auto model = bench_model(mixer, a, context);
      auto prompt = torch::randint(0, 512, {1, context});
      // Cached: one prefill (untimed), then a step per token.
      auto cached_tok_s = [&] {
        auto state = model->start_inference(1, context + a.tokens);
        auto next = model->step(prompt, state).select(1, -1).argmax(-1, true);
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < a.tokens; ++i)
          next = model->step(next, state).select(1, -1).argmax(-1, true);
        return static_cast<double>(a.tokens) / seconds_since(t0);
      };
      const double cached = cached_tok_s();
      double distilled = 0, distill_error = 0;
      if (a.distill > 0 && (mixer == "hyena" || mixer == "m2")) {
        DistillScope scope(a.distill);
        distilled = cached_tok_s();
        distill_error = DistillScope::worst_error();
      }
      // Recompute: the whole context through forward() for every token (fewer tokens timed).
      auto seq = prompt;
      const int64_t n = std::min(a.tokens, a.recompute_tokens);
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < n; ++i)
        seq = torch::cat({seq, model->forward(seq).select(1, -1).argmax(-1, true)}, 1);
      const double recompute = static_cast<double>(n) / seconds_since(t0);
      std::cout << std::left << std::setw(18) << mixer << std::setw(9) << context << std::setw(8)
                << a.tokens << std::setw(16) << std::fixed << std::setprecision(1) << cached
                << std::setw(18) << recompute << std::setprecision(1) << cached / recompute
                << "x\n";
      rows.push_back(bench::JsonObject()
                         .text("mixer", mixer)
                         .integer("context", context)
                         .integer("tokens", a.tokens)
                         .num("cached_tok_s", cached)
                         .num("recompute_tok_s", recompute));
      if (distilled > 0) {
        // Its own row, the same keys: mixer "hyena~distill16".
        const std::string label = mixer + "~distill" + std::to_string(a.distill);
        std::cout << std::left << std::setw(18) << label << std::setw(9) << context << std::setw(8)
                  << a.tokens << std::setw(16) << std::fixed << std::setprecision(1) << distilled
                  << std::setw(18) << recompute << distilled / recompute
                  << "x  (worst filter error " << std::scientific << std::setprecision(2)
                  << distill_error << std::fixed << ")\n";
        rows.push_back(bench::JsonObject()
                           .text("mixer", label)
                           .integer("context", context)
                           .integer("tokens", a.tokens)
                           .num("cached_tok_s", distilled)
                           .num("recompute_tok_s", recompute));
      }
    }
  }
  if (!a.json.empty()) bench::write_json_list(a.json, rows);
}

}  // namespace

void add_generate_bench(CLI::App* bench) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = bench->add_subcommand(
      "generate", "Generation tokens/s with the layer caches vs recomputing the context");
  cmd->add_option("--mixers", a->mixers, "Mixers (attention,primer,hyena,h3,m2,s4d)")
      ->delimiter(',');
  cmd->add_option("--context", a->contexts, "Prompt lengths")->delimiter(',');
  cmd->add_option("--d-model", a->d_model, "Model width")->check(CLI::PositiveNumber);
  cmd->add_option("--n-layer", a->n_layer, "Layers")->check(CLI::PositiveNumber);
  cmd->add_option("--tokens", a->tokens, "Tokens generated with the caches")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--recompute-tokens", a->recompute_tokens,
                  "Tokens timed by full recomputation (at most --tokens)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--distill", a->distill,
                  "Also time hyena/m2 with their filters distilled into this many modes (O(1) "
                  "per token, approximate; rows named MIXER~distillN)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--json", a->json,
                  "Also write [{mixer, context, tokens, cached_tok_s, recompute_tok_s}] here");
  cmd->footer(
      "Example:\n  herd bench generate --mixers hyena,attention --context 1024 --json g.json");
  cmd->callback([a] { run(*a); });
}

}  // namespace herd::cli
