#include "train/trainer.h"

#include <ATen/autocast_mode.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>

#include "ckpt/checkpoint.h"
#include "config/node.h"
#include "core/log.h"
#include "train/generate.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace herd {
namespace fs = std::filesystem;
namespace {

// Enables autocast for one forward pass.
class AutocastScope {
 public:
  AutocastScope(const Runtime& rt) : type_(rt.device.type()), on_(rt.autocast_dtype.has_value()) {
    if (!on_) return;
    at::autocast::set_autocast_dtype(type_, *rt.autocast_dtype);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type_, false);
  }

 private:
  c10::DeviceType type_;
  bool on_;
};

torch::Tensor batch_loss(Gpt& model, const Runtime& rt, const torch::Tensor& input,
                         const torch::Tensor& target) {
  AutocastScope autocast(rt);
  return model->loss(input.to(rt.device), target.to(rt.device));
}

std::string default_run_dir(const Config& cfg) {
  return (fs::path("runs") / fs::path(cfg.source).stem()).string();
}

}  // namespace

Runtime Runtime::from(const TrainConfig& t) {
  Runtime rt;
  const bool cuda = torch::cuda::is_available();
  if (t.device == "cuda")
    HERD_CHECK(cuda, "train.device: cuda requested but no CUDA device is available");
  rt.device = (t.device == "cuda" || (t.device == "auto" && cuda)) ? torch::Device(torch::kCUDA)
                                                                   : torch::Device(torch::kCPU);
  if (t.precision == "fp64") rt.param_dtype = torch::kFloat64;
  if (t.precision == "bf16" || (t.precision == "auto" && rt.device.is_cuda()))
    rt.autocast_dtype = torch::kBFloat16;
  return rt;
}

std::string Runtime::describe() const {
  std::string p = param_dtype == torch::kFloat64 ? "fp64" : "fp32";
  if (autocast_dtype) p += " params, bf16 autocast";
  return str(device.str(), ", ", p);
}

Config with_dataset(Config cfg, const data::DatasetManifest& manifest) {
  if (cfg.model.vocab_size == 0) {
    cfg.model.vocab_size = manifest.vocab_size;
  } else if (cfg.model.vocab_size < manifest.vocab_size) {
    throw Error(str(cfg.source, " model.vocab_size: ", cfg.model.vocab_size,
                    " is smaller than the dataset's ", manifest.vocab_size, " (",
                    manifest.manifest_path(), ")"));
  }
  cfg.resolved["model"]["vocab_size"] = cfg.model.vocab_size;
  return cfg;
}

double evaluate(Gpt& model, const Config& cfg, const Runtime& rt, data::ValLoader& val) {
  torch::NoGradGuard no_grad;
  model->eval();
  val.reset();
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < cfg.train.eval_batches; ++i) {
    auto batch = val.next_batch(cfg.micro_batch());
    if (!batch) break;
    const int64_t n = batch->input.size(0);
    total += batch_loss(model, rt, batch->input, batch->target).item<double>() * n;
    count += n;
  }
  model->train();
  HERD_CHECK(count > 0, cfg.data.dir, ": the validation split has no sample of seq_len+1 tokens");
  return total / count;
}

std::string sample_text(Gpt& model, const data::Tokenizer& tok, const Runtime& rt,
                        const std::string& prompt, int64_t max_tokens, double temperature,
                        int64_t top_k, uint64_t seed) {
  model->eval();
  std::vector<int64_t> ids{tok.eos_id()};  // a document boundary: what follows is a new text
  for (int id : tok.encode(prompt)) ids.push_back(id);
  SampleOptions o;
  o.max_tokens = max_tokens;
  o.temperature = temperature;
  o.top_k = top_k;
  o.seed = seed;
  o.context = model->cfg.max_seq_len;
  o.stop_token = tok.eos_id();
  auto fn = [&](const torch::Tensor& x) {
    AutocastScope autocast(rt);
    return model->forward(x.to(rt.device));
  };
  auto out = sample_tokens(fn, ids, o);
  model->train();
  std::vector<int> text_ids;
  for (int64_t id : out)
    if (id != tok.eos_id()) text_ids.push_back(static_cast<int>(id));
  return prompt + tok.decode(text_ids);
}

TrainResult train(const Config& base_cfg, const RunOptions& options) {
  HERD_CHECK(!base_cfg.data.dir.empty(), base_cfg.source,
             " data.dir: required (a directory made by `herd prepare text`)");
  const auto manifest = data::load_manifest(base_cfg.data.dir);
  const Config cfg = with_dataset(base_cfg, manifest);
  const std::string tok_path =
      cfg.data.tokenizer.empty() ? manifest.tokenizer_path : cfg.data.tokenizer;
  const auto tokenizer = data::Tokenizer::load(tok_path);
  HERD_CHECK(tokenizer.identity() == manifest.tokenizer_identity, tok_path, ": tokenizer identity ",
             tokenizer.identity(), " differs from the one the dataset was made with (",
             manifest.tokenizer_identity, ", ", manifest.manifest_path(), ")");

  const std::string run_dir = options.run_dir.empty() ? default_run_dir(cfg) : options.run_dir;
  const std::string ckpt_dir = (fs::path(run_dir) / "checkpoints").string();
  fs::create_directories(run_dir);
  log::set_level(cfg.logging.level);
  if (cfg.train.threads > 0) torch::set_num_threads(static_cast<int>(cfg.train.threads));
  const Runtime rt = Runtime::from(cfg.train);

  torch::manual_seed(cfg.train.seed);
  Gpt model(cfg.model);
  model->to(rt.device, rt.param_dtype);
  auto optimizer = make_optimizer(*model, cfg.optimizer);
  data::TrainLoader loader(manifest, cfg.seq_len(), cfg.train.seed);
  data::ValLoader val(manifest, cfg.seq_len());

  TrainResult result;
  int64_t tokens_seen = 0;
  std::optional<std::string> resume_from;
  if (options.resume == "auto") {
    resume_from = ckpt::find_latest(ckpt_dir);
  } else if (!options.resume.empty()) {
    resume_from = options.resume;
  }
  if (resume_from) {
    auto ck = ckpt::open(*resume_from);
    ckpt::check_same_model(ck.config, cfg.resolved, cfg.source);
    HERD_CHECK(ck.state.tokenizer_identity == tokenizer.identity(), ck.path,
               ": trained with tokenizer ", ck.state.tokenizer_identity, ", the config's is ",
               tokenizer.identity());
    ckpt::load_model(ck, *model);
    ckpt::load_optimizer(ck, *optimizer);
    ckpt::load_rng(ck);
    loader.restore(data::LoaderState::from_string(ck.state.loader_state));
    result.start_step = ck.state.step;
    tokens_seen = ck.state.tokens_seen;
    if (!options.quiet) log::info("resumed from ", ck.path, " at step ", ck.state.step);
  }
  std::ofstream(fs::path(run_dir) / "config.yaml") << cfg::to_yaml(cfg.resolved);
  MetricsWriter metrics((fs::path(run_dir) / "metrics.jsonl").string());

  const int64_t total = cfg.train.steps, B = cfg.train.batch_size, mb = cfg.micro_batch(),
                T = cfg.seq_len();
  const int64_t accum = B / mb;
  if (!options.quiet)
    log::info(
        "model: ", parameter_count(*model), " parameters, layers [",
        [&] {
          std::string s;
          for (const auto& n : layer_plan(cfg.model)) s += (s.empty() ? "" : " ") + n;
          return s;
        }(),
        "], ", rt.describe(), "; data: ", loader.num_tokens(), " train tokens, ",
        loader.num_samples(), " samples of ", T, "; run dir ", run_dir);

  auto checkpoint = [&](int64_t step) {
    ckpt::SaveRequest req;
    req.checkpoints_dir = ckpt_dir;
    req.state = {step, tokens_seen, loader.state().to_string(), tokenizer.identity(), ""};
    req.model = model.get();
    req.optimizer = optimizer.get();
    req.config = cfg.resolved.node();
    req.tokenizer_path = tok_path;
    req.keep_last = cfg.checkpoint.keep_last;
    result.last_checkpoint = ckpt::save(req);
    if (!options.quiet) log::info("checkpoint ", result.last_checkpoint);
  };

  // A tiny corpus may leave no validation sample: train anyway, say so once.
  const bool has_val = val.num_samples() > 0;
  if (!has_val)
    log::warn(manifest.manifest_path(), ": the validation split has no sample of ", T + 1,
              " tokens; evaluation is skipped (prepare with a larger --val-fraction)");
  model->train();
  ProgressClock clock(total - result.start_step);
  for (int64_t step = result.start_step; step < total; ++step) {
    const double lr = lr_at(cfg.optimizer, cfg.schedule, step, total);
    set_lr(*optimizer, lr);
    optimizer->zero_grad();
    auto batch = loader.next_batch(B);
    double step_loss = 0;
    for (int64_t m = 0; m < accum; ++m) {
      auto in = batch.input.narrow(0, m * mb, mb), tgt = batch.target.narrow(0, m * mb, mb);
      auto loss = batch_loss(model, rt, in, tgt);
      (loss / static_cast<double>(accum)).backward();
      step_loss += loss.item<double>() / accum;
    }
    HERD_CHECK(std::isfinite(step_loss), "step ", step + 1, ": loss is ", step_loss,
               " (diverged; lower optimizer.lr or raise schedule.warmup_steps)");
    double grad_norm = 0;
    if (cfg.train.grad_clip > 0)
      grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), cfg.train.grad_clip);
    optimizer->step();
    tokens_seen += B * T;
    result.losses.push_back(step_loss);
    const int64_t done = step + 1;
    clock.tick(B * T);
    metrics.step(done, step_loss, lr, grad_norm, clock.tokens_per_second(), tokens_seen);
    if (!options.quiet &&
        (done % cfg.logging.every == 0 || done == total || done == result.start_step + 1))
      log::info(clock.progress_line(done, total, step_loss, lr));
    if (has_val && cfg.train.eval_every > 0 && done % cfg.train.eval_every == 0 && done != total) {
      double v = evaluate(model, cfg, rt, val);
      metrics.eval(done, v);
      if (!options.quiet)
        log::info("step ", done, " | val loss ", std::fixed, std::setprecision(4), v, " | ppl ",
                  std::exp(v));
    }
    if (cfg.train.sample_every > 0 && done % cfg.train.sample_every == 0 && done != total &&
        !options.quiet)
      log::info("sample: ", sample_text(model, tokenizer, rt, cfg.train.sample_prompt,
                                        cfg.train.sample_tokens, cfg.train.sample_temperature,
                                        cfg.train.sample_top_k, cfg.train.seed + done));
    if (options.stop_after > 0 && done >= options.stop_after && done != total) {
      checkpoint(done);
      result.steps = done;
      result.tokens_per_second = clock.tokens_per_second();
      if (!options.quiet)
        log::info("stopped after step ", done, " (--stop-after); resume with --resume auto");
      return result;
    }
    if (cfg.checkpoint.every > 0 && done % cfg.checkpoint.every == 0 && done != total)
      checkpoint(done);
  }
  result.steps = total;
  result.tokens_per_second = clock.tokens_per_second();
  if (result.start_step < total || result.last_checkpoint.empty()) checkpoint(total);
  result.val_loss = has_val ? evaluate(model, cfg, rt, val) : std::nan("");
  if (has_val) metrics.eval(total, result.val_loss);
  if (!options.quiet && has_val) {
    log::info("final val loss ", std::fixed, std::setprecision(4), result.val_loss, " | ppl ",
              std::exp(result.val_loss));
  }
  if (cfg.train.sample_tokens > 0) {
    result.sample =
        sample_text(model, tokenizer, rt, cfg.train.sample_prompt, cfg.train.sample_tokens,
                    cfg.train.sample_temperature, cfg.train.sample_top_k, cfg.train.seed);
    if (!options.quiet) log::info("sample: ", result.sample);
  }
  return result;
}

}  // namespace herd
