// herd generate: sample text from a checkpoint, streaming tokens as they are chosen.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "blocks/inference.h"
#include "ckpt/checkpoint.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "data/text/tokenizer.h"
#include "models/gpt.h"
#include "train/generate.h"
#include "train/runtime.h"

namespace herd::cli {
namespace fs = std::filesystem;
namespace {

// A checkpoint directory, a checkpoints directory or its `latest` pointer -> one checkpoint.
std::string resolve_checkpoint(std::string path) {
  if (fs::path(path).filename() == "latest" || fs::is_regular_file(fs::path(path) / "latest")) {
    auto dir =
        fs::path(path).filename() == "latest" ? fs::path(path).parent_path() : fs::path(path);
    auto found = ckpt::find_latest(dir.string());
    HERD_CHECK(found, path, ": no complete checkpoint found");
    path = *found;
  }
  return path;
}

// Builds the GPT a checkpoint was trained with (or imported as) and loads its weights.
Gpt load_checkpoint_gpt(const ckpt::Checkpoint& ck, const Runtime& rt) {
  Config cfg = parse_config(ck.config, ck.file("config.yaml"));
  HERD_CHECK(cfg.model.stack == "gpt", ck.path, ": model.stack is ", cfg.model.stack,
             "; herd generate samples from gpt checkpoints only");
  Gpt model(cfg.model);
  ckpt::load_model(ck, *model);
  model->to(rt.device, rt.param_dtype);
  model->eval();
  return model;
}

// Prints the text of the tokens so far as it grows; finds the stop string.
class TextStream {
 public:
  TextStream(const data::Tokenizer& tok, std::string stop, bool print)
      : tok_(tok), stop_(std::move(stop)), print_(print) {}
  // False once the stop string has appeared (the text is cut before it).
  bool add(int64_t id) {
    if (id == tok_.eos_id()) return false;
    ids_.push_back(static_cast<int>(id));
    std::string text = tok_.decode(ids_);
    bool stop = false;
    if (!stop_.empty()) {
      const auto at = text.find(stop_);
      if (at != std::string::npos) {
        text.resize(at);
        stop = true;
      }
    }
    // SentencePiece may rewrite the tail (byte fallback); print only what is settled.
    if (print_ && text.size() > printed_ && text.compare(0, printed_, text_, 0, printed_) == 0) {
      std::cout << text.substr(printed_) << std::flush;
      printed_ = text.size();
    }
    text_ = text;
    return !stop;
  }
  const std::string& text() const { return text_; }

 private:
  const data::Tokenizer& tok_;
  std::string stop_;
  bool print_;
  std::vector<int> ids_;
  std::string text_;
  size_t printed_ = 0;
};

}  // namespace

void add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Sample text from a checkpoint");
  struct Args {
    std::string checkpoint, prompt, prompt_file, stop, tokenizer;
    int64_t max_tokens = 64, top_k = 40, num_samples = 1, distill = 0;
    double temperature = 0.8, top_p = 1.0;
    uint64_t seed = 0;
    bool no_cache = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--checkpoint", args->checkpoint, "Checkpoint directory")->required();
  cmd->add_option("--prompt", args->prompt, "Text to continue (default: start a new document)");
  cmd->add_option("--prompt-file", args->prompt_file, "Read the prompt from this file")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-tokens", args->max_tokens, "Tokens to generate")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--num-samples", args->num_samples,
                  "Independent samples (seeds seed, seed+1, ...)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_option("--temperature", args->temperature, "0 for greedy")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", args->top_k, "Sample among the k likeliest tokens (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", args->top_p, "Nucleus sampling: the likeliest tokens of this mass")
      ->check(CLI::Range(1e-9, 1.0));
  cmd->add_option("--stop", args->stop, "Stop when the text contains this string (cut before it)");
  cmd->add_option("--seed", args->seed, "Sampling seed");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.model (default: the checkpoint's own; imported weights may have none)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--no-cache", args->no_cache,
                "Recompute the whole context for every token instead of using the layer caches");
  cmd->add_option("--distill", args->distill,
                  "Hyena/m2: distil each long filter into this many complex modes for O(1) work "
                  "per token (approximate; the fit's worst error is printed)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(
      "Example:\n  herd generate --checkpoint runs/quickstart/checkpoints/latest --prompt \"The \" "
      "--max-tokens 80 --top-p 0.9 --num-samples 3 --stop \"\\n\\n\"");
  cmd->callback([args] {
    HERD_CHECK(args->prompt.empty() || args->prompt_file.empty(),
               "--prompt and --prompt-file are exclusive");
    HERD_CHECK(!(args->no_cache && args->distill > 0),
               "--distill works on the layer caches: drop --no-cache");
    DistillScope distill(args->distill);
    std::string prompt = args->prompt;
    if (!args->prompt_file.empty()) {
      std::ifstream f(args->prompt_file, std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      prompt = ss.str();
    }
    const auto ck = ckpt::open(resolve_checkpoint(args->checkpoint));
    std::string tok_path = args->tokenizer;
    if (tok_path.empty()) {
      HERD_CHECK(!ck.state.tokenizer_file.empty(), ck.path,
                 ": checkpoint has no tokenizer.model (pass --tokenizer, or import with it)");
      tok_path = ck.file(ck.state.tokenizer_file);
    }
    auto tok = data::Tokenizer::load(tok_path);
    Runtime rt = Runtime::from(TrainConfig{});
    Gpt model = load_checkpoint_gpt(ck, rt);
    std::vector<int64_t> ids{tok.eos_id()};  // a document boundary, as in training samples
    for (int id : tok.encode(prompt)) ids.push_back(id);
    for (int64_t s = 0; s < args->num_samples; ++s) {
      SampleOptions o;
      o.max_tokens = args->max_tokens;
      o.temperature = args->temperature;
      o.top_k = args->top_k;
      o.top_p = args->top_p;
      o.seed = args->seed + static_cast<uint64_t>(s);
      o.context = model->cfg.max_seq_len;
      o.stop_token = tok.eos_id();
      if (args->num_samples > 1) std::cout << (s ? "\n" : "") << "--- sample " << s + 1 << "\n";
      std::cout << prompt << std::flush;
      TextStream stream(tok, args->stop, /*print=*/true);
      auto on_token = [&](int64_t id) { return stream.add(id); };
      AutocastScope autocast(rt);
      if (args->no_cache) {
        auto fn = [&](const torch::Tensor& x) { return model->forward(x.to(rt.device)); };
        sample_tokens(fn, ids, o, on_token);
      } else {
        sample_tokens_cached(*model, ids, o, on_token);
      }
      std::cout << std::endl;
    }
    if (args->distill > 0) {
      const double err = DistillScope::worst_error();
      log::info("distilled filters (", args->distill, " modes): worst relative error ", err);
      // Past a few percent the samples are another model's: say so rather than let it pass.
      if (err > 0.05)
        log::warn("distilled filters are off by up to ", err,
                  " (relative): these samples differ from the model's own; raise --distill or "
                  "drop it");
    }
  });
}

}  // namespace herd::cli
